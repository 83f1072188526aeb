"""Tensors stored in another dimension order, used where they lie.

A channels-last activation (what convolutions on transformer tokens
produce) is a permutation of a contiguous tensor. Gram matrices, energies
and mode products do not depend on the order of an unfolding's columns, so
a decomposition can unfold that contiguous tensor and permute only the
small core back (:func:`~.tucker.tucker_core_in_order`), and a mode
product can multiply it without a copy (:func:`~.tensor_ops.mode_dot`).
"""
from typing import Optional, Tuple

import torch


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
    order = contiguous_order(tensor)
    if order is None:
        return tensor.contiguous(), tuple(range(tensor.ndim))
    return tensor.permute(order), order


def contiguous_order(tensor: torch.Tensor) -> Optional[Tuple[int, ...]]:
    """The order of dimensions in which ``tensor`` is contiguous.

    Args:
        tensor: Tensor of any order.

    Returns:
        The identity for a contiguous tensor, the permutation ``order``
        for which ``tensor.permute(order)`` is contiguous (a channels-last
        tensor: (0, 2, 3, 1)), or None when there is none (a slice with a
        step, an expanded tensor).
    """
    identity = tuple(range(tensor.ndim))
    if tensor.is_contiguous():
        return identity
    order = tuple(sorted(identity, key=lambda dim: -tensor.stride(dim)))
    if tensor.permute(order).is_contiguous():
        return order
    return None
