"""The solvers that find a mode's leading vectors, and the 'auto' policy.

Every solver takes an unfolding (a
:class:`~.mode_unfolding.ModeUnfolding`, used through products, never
copied whole) and the
:class:`~.decomposition_settings.DecompositionSettings`, and returns the
fewest orthonormal leading left singular vectors that explain ``eps`` of
the matrix's energy. A solver that cannot handle a matrix raises
:class:`~.checks.SolverUnsuitable`; :func:`~.decomposition.leading_vectors`,
the one place that runs solvers, then runs the fallback that
:data:`SOLVER_TABLE` declares for it.

* 'eigh': the full eigendecomposition of the Gram matrix; the paper's exact
  ranks. It handles every finite matrix, so it has no fallback.
* 'ritz': randomized subspace iteration plus Rayleigh-Ritz
  (:mod:`.ritz`); same eps guarantee, rank equal to the exact one or
  slightly larger. It falls back to 'eigh'.

'auto' is not a solver but a policy: below eps = 1, Ritz for unfoldings of
at least :data:`RITZ_MIN_SIZE` rows whose columns are at most rows^2 /
:data:`RITZ_ROWS_PER_ASPECT`, the eigendecomposition for all others.
"""
from types import MappingProxyType
from typing import TYPE_CHECKING, Callable, NamedTuple, Optional, Tuple

import torch

from .checks import AUTO, SOLVERS, check_solver
from .mode_unfolding import ModeUnfolding
from .ritz import next_start, ritz_leading_block
from .spectrum import gram_eigenpairs, rank_from_energy

if TYPE_CHECKING:
    from .decomposition_settings import DecompositionSettings

#: Below this many rows the eigendecomposition is cheap (it grows as
#: rows^3): 'auto' uses it.
RITZ_MIN_SIZE = 256
#: Ritz costs a few products with the whole (rows, columns) matrix; eigh
#: forms the Gram matrix (rows^2 columns) and decomposes it (rows^3). So
#: the widest unfolding for which Ritz is the cheaper grows with the rows:
#: measured on 2 CPU cores, the crossover is near columns / rows = rows / 64
#: (8 at 512 rows, 12 at 1024, 37 at 2048): 'auto' uses eigh beyond it.
RITZ_ROWS_PER_ASPECT = 64


class Solution(NamedTuple):
    """What a solver returns.

    Attributes:
        vectors: The leading vectors U as orthonormal columns, (m, k).
        next_start: The block to start the next solve of a similar matrix
            from, or None.
        projection: ``U^T X``, shape (k, n), the columns in the order of
            :meth:`~.mode_unfolding.ModeUnfolding.projected_gram`, when the
            solver formed it anyway (the Tucker core then reuses it), or
            None.
    """
    vectors: torch.Tensor
    next_start: Optional[torch.Tensor] = None
    projection: Optional[torch.Tensor] = None


class Solver(NamedTuple):
    """One entry of :data:`SOLVER_TABLE`.

    Attributes:
        function: ``function(matrix, settings, start, keep_projection)``
            returns a :class:`Solution`, or raises
            :class:`~.checks.SolverUnsuitable`; ``start`` (a
            ``next_start`` from the previous step, or None) may be used as
            a warm start, and a projection formed anyway is returned only
            when ``keep_projection`` asks for it.
        fallback: Name of the solver to run when this one raises
            :class:`~.checks.SolverUnsuitable`; None for a solver that never
            does.
    """
    function: Callable[[
        ModeUnfolding, 'DecompositionSettings', Optional[torch.Tensor], bool
    ], Solution]
    fallback: Optional[str]


def eigh_solver(
        matrix: ModeUnfolding,
        settings: 'DecompositionSettings',
        start: Optional[torch.Tensor] = None,
        keep_projection: bool = False) -> Solution:
    """Leading vectors at the exact rank, from the Gram eigendecomposition.

    A :class:`Solver` function of the unfolding X (m, n) that reads only
    ``settings.eps``: the full eigendecomposition needs no ``start``, and
    it forms no projection, whatever ``keep_projection`` asks.

    Returns:
        The vectors as orthonormal columns, shape (m, k); no start for a
        next solve, no projection.

    Raises:
        ValueError: If ``matrix`` holds NaN or Inf.
    """
    energy, vectors = gram_eigenpairs(matrix.gram())
    return Solution(vectors[:, :rank_from_energy(energy, settings.eps)])


def ritz_solver(
        matrix: ModeUnfolding,
        settings: 'DecompositionSettings',
        start: Optional[torch.Tensor] = None,
        keep_projection: bool = False) -> Solution:
    """Leading vectors from randomized subspace iteration plus Rayleigh-Ritz.

    Args:
        matrix: The unfolding X, shape (m, n).
        settings: The decomposition settings (``eps`` and ``seed``).
        start: The block to start from (see
            :func:`~.ritz.ritz_leading_block`), or None.
        keep_projection: Whether to keep the final block's projection of
            X, where it is narrow enough (see :class:`~.ritz.RitzBlock`).

    Returns:
        The vectors as orthonormal columns, shape (m, k),
        :func:`~.ritz.next_start` of the final block, and the projection
        of X on the vectors, or None.

    Raises:
        SolverUnsuitable: See :func:`~.ritz.ritz_leading_block`.
    """
    _, vectors, rank, projection = ritz_leading_block(
        matrix, settings.eps, settings.seed, start,
        keep_projection=keep_projection)
    return Solution(vectors[:, :rank], next_start(vectors, rank), projection)


#: The named solvers, read-only.
SOLVER_TABLE = MappingProxyType({
    'eigh': Solver(eigh_solver, fallback=None),
    'ritz': Solver(ritz_solver, fallback='eigh'),
})
# :func:`~.checks.check_solver` accepts exactly the policy and these
# solvers (it sits in .checks, which imports no solver)
if SOLVERS != (AUTO, ) + tuple(SOLVER_TABLE):
    raise ImportError(f'checks.SOLVERS {SOLVERS} does not name the policy '
                      f'{AUTO!r} and the solvers {tuple(SOLVER_TABLE)}')


def auto_policy(shape: Tuple[int, int], eps: float) -> str:
    """The solver 'auto' picks for an unfolding.

    Args:
        shape: (rows, columns) of the unfolding.
        eps: Explained-variance threshold.

    Returns:
        'ritz' when ``eps < 1``, ``rows >= RITZ_MIN_SIZE`` and
        ``columns * RITZ_ROWS_PER_ASPECT <= rows ** 2``; 'eigh' otherwise.
    """
    rows, cols = shape
    if (eps < 1.0 and rows >= RITZ_MIN_SIZE
            and cols * RITZ_ROWS_PER_ASPECT <= rows**2):
        return 'ritz'
    return 'eigh'


def solver_for(shape: Tuple[int, int], eps: float, solver: str) -> str:
    """The solver tried first for an unfolding: a table name.

    Args:
        shape: (rows, columns) of the unfolding.
        eps: Explained-variance threshold.
        solver: One of :data:`~.checks.SOLVERS`; 'auto' applies
            :func:`auto_policy`.

    Returns:
        A key of :data:`SOLVER_TABLE`.
    """
    if check_solver(solver) == AUTO:
        return auto_policy(shape, eps)
    return solver


def uses_ritz(shape: Tuple[int, int], eps: float, solver: str) -> bool:
    """Whether :func:`~.decomposition.leading_vectors` tries Ritz first.

    Args:
        shape: (rows, columns) of the unfolding.
        eps: Explained-variance threshold.
        solver: One of :data:`~.checks.SOLVERS`.
    """
    return solver_for(shape, eps, solver) == 'ritz'
