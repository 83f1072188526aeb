"""Fixed-rank HOSVD by warm-started subspace iteration.

Beyond the paper, after the same authors' ICML 2025 follow-up: each mode's
factor from the previous step is refined by one step of subspace iteration,
``Y = X (X^T U)`` then QR, instead of a new eigendecomposition; the ranks are
fixed, so the stored size is constant and can be planned.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch

from .dense_layout import dense_layout
from .mode_unfolding import ModeUnfolding, as_unfolding
from .spectrum import compact, decomposition_dtype, gram_eigenpairs
from .tucker import tucker_core_in_order


def subspace_step(matrix: Union[torch.Tensor, ModeUnfolding],
                  factor: torch.Tensor) -> torch.Tensor:
    """One subspace-iteration step: orthonormal basis of ``X X^T U``.

    Args:
        matrix: X, shape (n, m), or a
            :class:`~.mode_unfolding.ModeUnfolding`.
        factor: U, shape (n, k), orthonormal columns.

    Returns:
        The refined (n, k) factor with orthonormal columns.
    """
    q, r = torch.linalg.qr(as_unfolding(matrix).gram_times(factor))
    # keep the column signs stable from step to step
    signs = torch.sign(torch.diagonal(r))
    signs[signs == 0] = 1
    return q * signs


def subspace_hosvd(tensor: torch.Tensor,
                   ranks: Sequence[int],
                   previous: Optional[Sequence[Optional[torch.Tensor]]] = None
                   ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
    """Tucker decomposition at fixed ranks, warm-started from ``previous``.

    A mode whose previous factor is missing or of another shape (first
    step, a resume, a new batch size or rank) starts from the leading
    eigenvectors of its Gram matrix; the others take one subspace step.

    Args:
        tensor: Tensor of order len(ranks).
        ranks: Rank per mode, each clipped to the mode's size.
        previous: Factors of the previous step (or None per mode).

    Returns:
        ``(core, factors)`` in the decomposition dtype.
    """
    if len(ranks) != tensor.ndim:
        raise ValueError(f'ranks needs one entry per mode ({tensor.ndim}), '
                         f'got {tuple(ranks)!r}')
    work, order = dense_layout(tensor.detach())
    dtype = decomposition_dtype(work.dtype)
    previous = list(previous) if previous is not None else [None] * work.ndim
    factors = []
    for mode, rank in enumerate(ranks):
        matrix = ModeUnfolding(work, order.index(mode))
        k = max(1, min(int(rank), matrix.rows))
        prev = previous[mode]
        if prev is None or prev.shape != (matrix.rows, k) or (
                prev.dtype != dtype) or prev.device != work.device:
            factor = gram_eigenpairs(matrix.gram())[1][:, :k]
        else:
            factor = subspace_step(matrix, prev)
        factors.append(compact(factor))
    return compact(tucker_core_in_order(work, order, factors)), factors
