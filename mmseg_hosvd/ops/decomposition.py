"""Low-rank decompositions: explained-variance ranks, truncated SVD, HOSVD.

Leading singular vectors are taken from the eigendecomposition of the Gram
matrix of the short side of each matrix, never from a full SVD of a wide
unfolding: for an activation of shape (8, 512, 64, 64) the four Gram matrices
are at most 512 x 512. Under the default solver, large modes whose
unfolding is not much wider than tall (a decode head's channel mode) take
their leading vectors from randomized subspace iteration (:mod:`.ritz`)
instead, which keeps the eps guarantee.
"""
from typing import List, Optional, Sequence, Tuple

import torch

from .checks import check_eps, check_finite
from .ritz import ritz_leading_vectors
from .tensor_ops import multi_mode_dot, unfold

#: How HOSVD-eps finds each mode's leading vectors: 'auto' uses the Ritz
#: solver for unfoldings of at least RITZ_MIN_SIZE rows and at most
#: RITZ_MAX_ASPECT times as many columns as rows, 'eigh' always the full
#: Gram eigendecomposition (the paper's exact ranks).
SOLVERS = ('auto', 'eigh')
#: Below this the eigendecomposition is cheap (it grows as rows^3).
RITZ_MIN_SIZE = 256
#: Wider unfoldings make every Ritz pass (a product with the whole matrix)
#: cost more than forming the Gram matrix once: at (8, 512, 64, 64) the
#: Ritz solver was 1.6x (eps 0.8) to 2.4x (eps 0.9) slower than eigh, at
#: (8, 512, 16, 16) 1.3x to 1.5x faster, at (8, 1024, 16, 16) 5x faster.
RITZ_MAX_ASPECT = 4


def decomposition_dtype(dtype: torch.dtype) -> torch.dtype:
    """Dtype the decompositions run in: float64 stays, all else is float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def rank_from_energy(energy: torch.Tensor, eps: float) -> int:
    """Smallest k whose leading energies reach ``eps`` of the total.

    Args:
        energy: Squared singular values (eigenvalues of the Gram matrix) in
            descending order.
        eps: Explained-variance threshold in (0, 1]; 1 keeps every component.

    Returns:
        The rank; 0 when the total energy is zero.
    """
    eps = check_eps(eps)
    energy = energy.detach().to(torch.float64).clamp_min(0)
    total = energy.sum()
    if total <= 0:
        return 0
    if eps >= 1.0:
        return energy.numel()
    ratio = torch.cumsum(energy, 0) / total
    return min(int((ratio < eps).sum()) + 1, energy.numel())


def rank_from_explained_variance(singular_values: torch.Tensor,
                                 eps: float) -> int:
    """Smallest k with ``sum(s[:k]**2) / sum(s**2) >= eps``.

    Args:
        singular_values: Singular values in descending order.
        eps: Explained-variance threshold in (0, 1].

    Returns:
        The rank; 0 for an all-zero matrix.
    """
    return rank_from_energy(singular_values.to(torch.float64)**2, eps)


def check_solver(solver: str) -> str:
    """Validates a HOSVD-eps solver name (one of :data:`SOLVERS`)."""
    if solver not in SOLVERS:
        raise ValueError(f'solver must be one of {SOLVERS}, got {solver!r}')
    return solver


def gram_eigh(matrix: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Eigenpairs of ``matrix @ matrix.T`` in descending order.

    Args:
        matrix: Matrix of shape (m, n), usually with m much smaller than n.

    Returns:
        ``(energy, vectors)``: the m squared singular values of ``matrix``
        (clamped at 0) and its left singular vectors as columns, both in the
        decomposition dtype.

    Raises:
        ValueError: If ``matrix`` holds NaN or Inf.
    """
    work = matrix.to(decomposition_dtype(matrix.dtype))
    gram = work @ work.t()
    check_finite(gram.diagonal())
    energy, vectors = torch.linalg.eigh(gram)
    return energy.flip(0).clamp_min(0), vectors.flip(1)


def compact(tensor: torch.Tensor) -> torch.Tensor:
    """A contiguous copy that owns exactly its own storage.

    Slices of eigenvector matrices would otherwise keep the whole matrix
    alive in what autograd saves.
    """
    if tensor.untyped_storage().nbytes() == tensor.numel(
    ) * tensor.element_size() and tensor.is_contiguous():
        return tensor
    return tensor.clone(memory_format=torch.contiguous_format)


def _check_rank_args(eps, rank) -> None:
    if (eps is None) == (rank is None):
        raise ValueError('give exactly one of eps and rank, got '
                         f'eps={eps!r}, rank={rank!r}')


def truncated_svd(matrix: torch.Tensor,
                  eps: Optional[float] = None,
                  rank: Optional[int] = None
                  ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Truncated SVD ``U diag(S) Vh`` of a matrix, rank by eps or given.

    Computed from the eigendecomposition of the Gram matrix of the shorter
    side.

    Args:
        matrix: Matrix of shape (m, n).
        eps: Explained-variance threshold in (0, 1].
        rank: Fixed rank, clipped to ``min(m, n)``.

    Returns:
        ``(U, S, Vh)`` of shapes (m, k), (k,), (k, n) in the decomposition
        dtype.
    """
    _check_rank_args(eps, rank)
    if matrix.ndim != 2:
        raise ValueError(f'truncated_svd expects a matrix, got shape '
                         f'{tuple(matrix.shape)}')
    transposed = matrix.shape[0] > matrix.shape[1]
    work = matrix.t() if transposed else matrix
    energy, vectors = gram_eigh(work)
    k = rank_from_energy(energy, eps) if rank is None else min(
        int(rank), energy.numel())
    u = vectors[:, :k]
    s = energy[:k].sqrt()
    vh = (u.t() @ work.to(u.dtype)) / s.clamp_min(torch.finfo(
        s.dtype).tiny).unsqueeze(1)
    if transposed:
        return compact(vh.t()), s, compact(u.t())
    return compact(u), s, compact(vh)


def uses_ritz(shape: Tuple[int, int], eps: float, solver: str) -> bool:
    """Whether :func:`leading_vectors` tries the Ritz solver first.

    Args:
        shape: (rows, columns) of the unfolding.
        eps: Explained-variance threshold.
        solver: 'auto' or 'eigh'.
    """
    rows, cols = shape
    return check_solver(solver) == 'auto' and eps < 1.0 and (
        rows >= RITZ_MIN_SIZE) and cols <= RITZ_MAX_ASPECT * rows


def leading_vectors(matrix: torch.Tensor, eps: float,
                    solver: str = 'auto') -> torch.Tensor:
    """Fewest leading left singular vectors explaining ``eps`` of ``matrix``.

    Args:
        matrix: Matrix of shape (m, n), any floating dtype (decomposed in
            float32, or float64 for float64 input).
        eps: Explained-variance threshold in (0, 1].
        solver: 'eigh' for the exact rank from the Gram eigendecomposition;
            'auto' to use :func:`~.ritz.ritz_leading_vectors` when
            ``m >= RITZ_MIN_SIZE``, ``n <= RITZ_MAX_ASPECT * m`` and eps < 1
            (same guarantee, rank equal to the exact one or slightly
            larger).

    Returns:
        The vectors as orthonormal columns, shape (m, k).
    """
    eps = check_eps(eps)
    matrix = matrix.to(decomposition_dtype(matrix.dtype))
    if uses_ritz(matrix.shape, eps, solver):
        found = ritz_leading_vectors(matrix, eps)
        if found is not None:
            return found[1]
    energy, vectors = gram_eigh(matrix)
    return vectors[:, :rank_from_energy(energy, eps)]


def hosvd(tensor: torch.Tensor,
          eps: Optional[float] = None,
          rank: Optional[Sequence[int]] = None,
          solver: str = 'auto'
          ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
    """Higher-order SVD (truncated Tucker decomposition).

    Each factor holds the leading left singular vectors of one unfolding,
    taken from the eigendecomposition of that unfolding's Gram matrix (or,
    for large modes under ``solver='auto'``, from randomized subspace
    iteration); the rank per mode comes from ``eps`` (the paper's
    HOSVD-eps) or is given.

    Args:
        tensor: Tensor of any order, any floating dtype.
        eps: Explained-variance threshold in (0, 1], applied per mode.
        rank: One rank per mode, each clipped to that mode's size.
        solver: 'auto' or 'eigh', see :func:`leading_vectors`; only used
            with ``eps``.

    Returns:
        ``(core, factors)``: core of shape (K0, ..., Kn) and factors of shape
        (I_j, K_j), in the decomposition dtype. A mode of rank 0 (all-zero
        tensor) gives empty factors and an empty core.
    """
    _check_rank_args(eps, rank)
    check_solver(solver)
    if eps is not None:
        eps = check_eps(eps)
    if rank is not None and len(rank) != tensor.ndim:
        raise ValueError(f'rank needs one entry per mode ({tensor.ndim}), '
                         f'got {rank!r}')
    work = tensor.detach().to(decomposition_dtype(tensor.dtype))
    factors = []
    for mode in range(work.ndim):
        matrix = unfold(work, mode)
        if rank is None:
            factor = leading_vectors(matrix, eps, solver)
        else:
            factor = gram_eigh(matrix)[1][:, :int(rank[mode])]
        factors.append(compact(factor))
    core = compact(multi_mode_dot(work, factors, transpose=True))
    return core, factors
