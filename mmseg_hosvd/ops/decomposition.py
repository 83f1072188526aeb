"""Low-rank decompositions: truncated SVD, leading vectors, HOSVD.

Leading singular vectors are taken from the eigendecomposition of the Gram
matrix of the short side of each matrix, never from a full SVD of a wide
unfolding: for an activation of shape (8, 512, 64, 64) the four Gram matrices
are at most 512 x 512. HOSVD never copies an unfolding whole: each is a
:class:`~.mode_unfolding.ModeUnfolding`, summed over views and small
blocks. Under the default solver, large modes whose
unfolding is not much wider than tall (a decode head's channel mode) take
their leading vectors from randomized subspace iteration (:mod:`.ritz`)
instead, which keeps the eps guarantee (see :mod:`.solvers`).
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch

from .checks import SOLVERS, SolverUnsuitable, check_eps, check_solver
from .decomposition_settings import (
    DecompositionSettings,
    check_seed,
    resolve_settings,
)
from .dense_layout import dense_layout
from .mode_unfolding import ModeUnfolding, as_unfolding
from .shared_solves import solve_cold
from .solvers import (
    RITZ_MIN_SIZE,
    RITZ_ROWS_PER_ASPECT,
    SOLVER_TABLE,
    Solution,
    solver_for,
    uses_ritz,
)
from .spectrum import (
    compact,
    decomposition_dtype,
    gram_eigenpairs,
    gram_eigh,
    rank_from_energy,
    rank_from_explained_variance,
)
from .tucker import tucker_core_in_order
from .warm_start import WarmStart

#: Public names, including those defined in :mod:`.solvers`,
#: :mod:`.spectrum` and :mod:`.checks` and still importable from here.
__all__ = [
    'RITZ_MIN_SIZE', 'RITZ_ROWS_PER_ASPECT', 'SOLVERS', 'check_eps',
    'check_solver', 'compact', 'decomposition_dtype', 'gram_eigh', 'hosvd',
    'leading_vectors', 'rank_from_energy', 'rank_from_explained_variance',
    'truncated_svd', 'uses_ritz'
]


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


def leading_vectors(matrix: Union[torch.Tensor, ModeUnfolding],
                    settings: Union[DecompositionSettings, float],
                    solver: Optional[str] = None) -> torch.Tensor:
    """Fewest leading left singular vectors explaining ``eps`` of ``matrix``.

    The one place that runs the solvers of
    :data:`~mmseg_hosvd.ops.solvers.SOLVER_TABLE`: it tries the solver the
    settings name ('auto' picks one per matrix) and, when that solver raises
    :class:`~mmseg_hosvd.ops.checks.SolverUnsuitable`, runs its declared
    fallback.

    Args:
        matrix: Matrix of shape (m, n), any floating dtype (decomposed in
            float32, or float64 for float64 input), or a
            :class:`~.mode_unfolding.ModeUnfolding`.
        settings: The :class:`DecompositionSettings`; for compatibility, the
            explained-variance threshold ``eps`` in (0, 1] instead.
        solver: With a threshold as ``settings``, one of
            :data:`~mmseg_hosvd.ops.checks.SOLVERS` (default 'auto');
            with a settings object, None or its own solver.

    Returns:
        The vectors as orthonormal columns, shape (m, k).

    Raises:
        ValueError: For a bad threshold or solver, a solver that disagrees
            with ``settings``, or NaN/Inf in ``matrix``.
    """
    if not isinstance(settings, DecompositionSettings):
        settings = DecompositionSettings(settings,
                                         'auto' if solver is None else solver)
    elif solver is not None and solver != settings.solver:
        raise ValueError(f'solver={solver!r} disagrees with settings.solver='
                         f'{settings.solver!r}; pass one or the other')
    return _solve(as_unfolding(matrix), settings).vectors


def _solve(matrix: ModeUnfolding, settings: DecompositionSettings,
           start: Optional[torch.Tensor] = None,
           keep_projection: bool = False) -> Solution:
    """Runs the settings' solver, then its fallbacks while they give up.

    Returns:
        The :class:`~.solvers.Solution` of the solver that succeeded.
    """
    name = solver_for(matrix.shape, settings.eps, settings.solver)
    while True:
        entry = SOLVER_TABLE[name]
        try:
            return entry.function(matrix, settings, start, keep_projection)
        except SolverUnsuitable:
            if entry.fallback is None:
                raise
            name = entry.fallback


def _solve_mode(tensor: torch.Tensor, matrix: ModeUnfolding, mode: int,
                settings: DecompositionSettings,
                warm_start: Optional[WarmStart]) -> Solution:
    """:func:`_solve` for a Tucker factor of ``tensor`` (its projection
    kept), started from and kept in ``warm_start``; a cold solve through
    :func:`~.shared_solves.solve_cold`."""
    start = None if warm_start is None else warm_start.get(
        mode, matrix.shape[0])
    if start is None:
        solution = solve_cold(
            tensor, mode, settings,
            lambda: _solve(matrix, settings, keep_projection=True))
    else:
        solution = _solve(matrix, settings, start, keep_projection=True)
    if warm_start is not None:
        warm_start.keep(mode, solution.next_start)
    return solution


def hosvd(tensor: torch.Tensor,
          eps: Optional[float] = None,
          rank: Optional[Sequence[int]] = None,
          solver: str = 'auto',
          seed: int = 0,
          *,
          settings: Optional[DecompositionSettings] = None,
          warm_start: Optional[WarmStart] = None,
          channel_mode: int = 1
          ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
    """Higher-order SVD (truncated Tucker decomposition).

    Each factor holds the leading left singular vectors of one unfolding,
    taken from the eigendecomposition of that unfolding's Gram matrix (or,
    for large modes under ``solver='auto'``, from randomized subspace
    iteration); the rank per mode comes from ``eps`` (the paper's
    HOSVD-eps) or is given. With ``settings.keep_batch`` the first mode
    is not truncated: its factor is the identity. With
    ``settings.spatial_eps`` the modes other than the first and
    ``channel_mode`` are truncated at that threshold.

    Args:
        tensor: Tensor of any order, any floating dtype.
        eps: Explained-variance threshold in (0, 1], applied per mode.
        rank: One rank per mode, each clipped to that mode's size.
        solver: One of :data:`~mmseg_hosvd.ops.checks.SOLVERS`, see
            :func:`leading_vectors`; only used with ``eps``.
        seed: Seed of the Ritz solver's private generator, an int >= 0.
        settings: ``eps``, ``solver`` and ``seed`` as one
            :class:`DecompositionSettings`, instead of ``eps``; flat
            arguments left at their defaults defer to it, others must
            agree with it.
        warm_start: The previous call's blocks for this layer (see
            :class:`~.warm_start.WarmStart`): the Ritz solver starts from
            them, and they are replaced by this call's. Only used with
            ``eps``; None solves cold.
        channel_mode: The channel mode, which ``settings.spatial_eps``
            leaves at ``eps``: 1 for a convolution input (B, C, H, W), the
            last for a Linear input (B, ..., C).

    Returns:
        ``(core, factors)``: core of shape (K0, ..., Kn) and factors of shape
        (I_j, K_j), in the decomposition dtype. A mode of rank 0 (all-zero
        tensor) gives empty factors and an empty core.

    Raises:
        ValueError: Unless exactly one of ``eps`` (or ``settings``) and
            ``rank`` is given, for out-of-range values (``channel_mode``
            included), and for NaN/Inf.
    """
    if settings is not None and rank is not None:
        raise ValueError('give exactly one of settings and rank, got '
                         f'settings={settings!r}, rank={rank!r}')
    if settings is None:
        _check_rank_args(eps, rank)
        check_solver(solver)
        check_seed(seed)
        if eps is not None:
            settings = DecompositionSettings(eps, solver, seed)
    else:
        settings = resolve_settings(settings, eps, solver, seed,
                                    eps_default=None)
    if rank is not None and len(rank) != tensor.ndim:
        raise ValueError(f'rank needs one entry per mode ({tensor.ndim}), '
                         f'got {rank!r}')
    if tensor.ndim > 1 and not 0 < channel_mode < tensor.ndim:
        raise ValueError(f'channel_mode must be a mode after the first of '
                         f'a tensor of order {tensor.ndim}, got '
                         f'{channel_mode!r}')
    spatial = settings.spatial() if settings is not None else None
    work, order = dense_layout(tensor.detach())
    factors, projected, shrink = [], None, 1.0
    for mode in range(work.ndim):
        matrix = ModeUnfolding(work, order.index(mode))
        if mode == 0 and settings is not None and settings.keep_batch:
            factor = torch.eye(matrix.shape[0], device=work.device,
                               dtype=decomposition_dtype(work.dtype))
        elif rank is None:
            solution = _solve_mode(
                tensor, matrix, mode, settings if mode in (0, channel_mode)
                else spatial, warm_start)
            factor = solution.vectors
            # the projection that shrinks the tensor most is kept
            if (solution.projection is not None
                    and factor.shape[1] / matrix.shape[0] < shrink):
                shrink = factor.shape[1] / matrix.shape[0]
                projected = (mode, solution.projection)
            del solution
        else:
            factor = gram_eigenpairs(matrix.gram())[1][:, :int(rank[mode])]
        factors.append(compact(factor))
    return compact(tucker_core_in_order(work, order, factors,
                                        projected)), factors
