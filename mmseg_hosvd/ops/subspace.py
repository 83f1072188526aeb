"""Fixed-rank HOSVD by warm-started subspace iteration.

Beyond the paper, after the same authors' ICML 2025 follow-up: each mode's
factor from the previous step is refined by one step of subspace iteration,
``Y = X (X^T U)`` then QR, instead of a new eigendecomposition; the ranks are
fixed, so the stored size is constant and can be planned.
"""
from typing import List, Optional, Sequence, Tuple

import torch

from .spectrum import compact, decomposition_dtype, gram_eigh
from .tensor_ops import gram_times, multi_mode_dot, unfold


def subspace_step(matrix: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """One subspace-iteration step: orthonormal basis of ``X X^T U``.

    Args:
        matrix: X, shape (n, m).
        factor: U, shape (n, k), orthonormal columns.

    Returns:
        The refined (n, k) factor with orthonormal columns.
    """
    q, r = torch.linalg.qr(gram_times(matrix, factor))
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
    work = tensor.detach().to(decomposition_dtype(tensor.dtype))
    previous = list(previous) if previous is not None else [None] * work.ndim
    factors = []
    for mode, rank in enumerate(ranks):
        matrix = unfold(work, mode)
        k = max(1, min(int(rank), matrix.shape[0]))
        prev = previous[mode]
        if prev is None or prev.shape != (matrix.shape[0], k) or (
                prev.dtype != work.dtype) or prev.device != work.device:
            factor = gram_eigh(matrix)[1][:, :k]
        else:
            factor = subspace_step(matrix, prev)
        factors.append(compact(factor))
    core = compact(multi_mode_dot(work, factors, transpose=True))
    return core, factors
