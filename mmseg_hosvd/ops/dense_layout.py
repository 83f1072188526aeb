"""Tensors stored in another dimension order, decomposed where they lie.

A channels-last activation (what convolutions on transformer tokens
produce) is a permutation of a contiguous tensor. Gram matrices, energies
and mode products do not depend on the order of an unfolding's columns, so
a decomposition can unfold that contiguous tensor and permute only the
small core back (:func:`tucker_core_in_order`).
"""
from typing import Optional, Sequence, Tuple

import torch

from .tucker import tucker_core


def dense_layout(tensor: torch.Tensor
                 ) -> Tuple[torch.Tensor, Tuple[int, ...]]:
    """The tensor with its dimensions in memory order, and that order.

    A channels-last activation (what convolutions on transformer tokens
    produce) is contiguous once its dimensions are permuted to (B, H, W,
    C); unfolding that permutation reads the data where it lies, where
    ``contiguous()`` would transpose the whole tensor (97 ms for
    SegFormer-B0's 32 MB fusion input on one core). Gram matrices,
    energies and mode products do not depend on the layout.

    Args:
        tensor: Tensor of any order.

    Returns:
        ``(dense, order)``: ``dense = tensor.permute(order)`` is contiguous
        (its mode j is the tensor's mode ``order[j]``); a tensor that no
        permutation makes contiguous is copied once, with the identity
        order.
    """
    identity = tuple(range(tensor.ndim))
    if tensor.is_contiguous():
        return tensor, identity
    order = tuple(sorted(identity, key=lambda dim: -tensor.stride(dim)))
    dense = tensor.permute(order)
    if dense.is_contiguous():
        return dense, order
    return tensor.contiguous(), identity


def tucker_core_in_order(
        dense: torch.Tensor,
        order: Sequence[int],
        factors: Sequence[torch.Tensor],
        projected: Optional[Tuple[int, torch.Tensor]] = None
) -> torch.Tensor:
    """:func:`tucker_core` of the tensor that ``dense`` is a permutation of.

    Args:
        dense: ``tensor.permute(order)``, from :func:`dense_layout`.
        order: That permutation.
        factors: The factors in the tensor's mode order.
        projected: ``(mode, product)``, ``mode`` in the tensor's order and
            ``product`` the factor's projection of the unfolding of
            ``dense`` at that mode (see :func:`tucker_core`), or None.

    Returns:
        The core in the tensor's mode order (a permuted view).
    """
    if projected is not None:
        projected = (order.index(projected[0]), projected[1])
    core = tucker_core(dense, [factors[mode] for mode in order], projected)
    return core.permute([order.index(mode) for mode in range(len(order))])
