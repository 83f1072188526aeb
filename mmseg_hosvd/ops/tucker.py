"""The Tucker core of a tensor, given its factors.

The core ``tensor x_1 U_1^T ... x_n U_n^T`` is formed mode by mode, the
mode that shrinks the tensor most first and read in slices
(:meth:`~.mode_unfolding.ModeUnfolding.slabs`), so no full-size copy of
the tensor is made; a mode whose product the Ritz solver has already
formed is not multiplied again.
"""
import math
from typing import Optional, Sequence, Tuple

import torch

from .mode_unfolding import ModeUnfolding
from .tensor_ops import multi_mode_dot


def _first_product(tensor: torch.Tensor, mode: int,
                   factor: torch.Tensor) -> torch.Tensor:
    """``factor^T`` times the mode's unfolding, as (before, k, after)."""
    unfolding = ModeUnfolding(tensor, mode, factor.dtype)
    basis = factor.t()
    product = torch.empty(unfolding.before, basis.shape[0], unfolding.after,
                          dtype=basis.dtype, device=basis.device)
    for target, part in unfolding.slabs(product):
        if target.is_contiguous():
            torch.matmul(basis, part, out=target)
        else:
            target.copy_(basis @ part)
        del part
    return product


def _given_product(shape: Sequence[int], mode: int, factor: torch.Tensor,
                   product: torch.Tensor) -> torch.Tensor:
    """A (k, columns) projection of the mode's unfolding, as (before, k,
    after)."""
    before, after = math.prod(shape[:mode]), math.prod(shape[mode + 1:])
    if product.shape != (factor.shape[1], before * after):
        raise ValueError(f'the projection of mode {mode} must have shape '
                         f'{(factor.shape[1], before * after)}, got '
                         f'{tuple(product.shape)}')
    return product.reshape(-1, before, after).transpose(0, 1)


def tucker_core(tensor: torch.Tensor,
                factors: Sequence[torch.Tensor],
                projected: Optional[Tuple[int, torch.Tensor]] = None
                ) -> torch.Tensor:
    """The Tucker core ``tensor x_1 U_1^T ... x_n U_n^T``.

    The mode that shrinks the tensor most is applied first, in slices along
    the modes before it, each cast to the factors' dtype on its own: no
    full-size copy of ``tensor`` is made, in any dtype. The remaining modes
    act on the already smaller product.

    Args:
        tensor: Tensor of order n.
        factors: n factor matrices of shapes ``(I_j, K_j)``, in one dtype.
        projected: ``(mode, product)`` when one mode's product is already
            known (the Ritz solver's last projection): ``product`` is
            ``factors[mode]^T`` times that mode's unfolding, shape
            ``(K_mode, columns)``, columns in
            :meth:`~.mode_unfolding.ModeUnfolding.projected_gram`'s
            order. That mode then comes first, and ``tensor`` is not
            read.

    Returns:
        The core, shape ``(K_1, ..., K_n)``, in the factors' dtype.

    Raises:
        ValueError: For a number of factors other than of modes, or a
            ``projected`` product of the wrong shape.
    """
    if len(factors) != tensor.ndim:
        raise ValueError(f'need one factor per mode ({tensor.ndim}), got '
                         f'{len(factors)}')
    if projected is None:
        first = min(
            range(tensor.ndim),
            key=lambda m: factors[m].shape[1] / max(tensor.shape[m], 1))
        product = _first_product(tensor, first, factors[first])
    else:
        first = projected[0]
        product = _given_product(tensor.shape, first, factors[first],
                                 projected[1])
    shape = list(tensor.shape)
    shape[first] = product.shape[1]
    rest = [m for m in range(tensor.ndim) if m != first]
    return multi_mode_dot(product.reshape(shape),
                          [factors[m] for m in rest], modes=rest,
                          transpose=True)


def tucker_core_in_order(
        dense: torch.Tensor,
        order: Sequence[int],
        factors: Sequence[torch.Tensor],
        projected: Optional[Tuple[int, torch.Tensor]] = None
) -> torch.Tensor:
    """:func:`tucker_core` of the tensor that ``dense`` is a permutation of.

    Args:
        dense: ``tensor.permute(order)``, from
            :func:`~.dense_layout.dense_layout`.
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
