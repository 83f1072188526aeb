"""Leading singular vectors of a large mode, without its full eigensolver.

For a trained network the ranks that reach eps are small compared with the
size of a large mode, so randomized subspace iteration with a Rayleigh-Ritz
step finds the leading vectors at a fraction of the cost of the full
eigendecomposition of the Gram matrix (Halko, Martinsson and Tropp,
"Finding structure with randomness", 2011).

The explained-variance rule stays a guarantee, up to floating-point
rounding: the energy captured by the returned orthonormal vectors is
computed directly (the Ritz values of the block), and vectors are added
until it reaches eps of the total. Ritz values never exceed the true
eigenvalues, so the rank is the exact one or slightly more, not less (again
up to rounding at the threshold). When the block would have to grow past
half of the mode's rows, the full eigendecomposition is cheaper: the solver
then raises :class:`~.checks.SolverUnsuitable` and the caller runs its
fallback (see :mod:`.solvers`).

Warm start: a training step decomposes an activation much like the one of
the step before, so the previous step's leading Ritz vectors (its rank
plus :data:`OVERSAMPLE`) are a good first block. Started from them, one
subspace-iteration step is enough where the rank is small next to the
mode (at most :data:`WARM_MAX_ROW_FRACTION` of its rows, the block
included); the guarantee is unchanged, since the captured energy is still
checked directly, and the rank comes out a little larger than the exact
one (``benchmarks/decomposition.py --from-protocol``, target batches 2-4:
SegFormer-B0's fusion input +1 on exact ranks of 32-36, its whole HOSVD
in 0.43 of the cold time; PSPNet's bottleneck input +3 to +4 on 51-58,
cold +2, in about half the time).
"""
import math
from typing import NamedTuple, Optional, Tuple, Union

import torch

from .checks import SolverUnsuitable, check_eps
from .mode_unfolding import ModeUnfolding, as_unfolding

#: Extra columns of the random block beyond the rank it aims at.
OVERSAMPLE = 16
#: Subspace-iteration steps per block (each one QR-orthonormalised).
POWER_STEPS = 2
#: Columns of the first block when no rank is known yet.
FIRST_BLOCK = 32
#: Subspace-iteration steps of a block started from the previous vectors.
WARM_POWER_STEPS = 1
#: A start wider than this fraction of the mode's rows is not used: with a
#: rank that large the spectrum is flat around it and one step leaves the
#: rank well above the exact one (measured at eps 0.9 on DeepLabV3's
#: 512- and 640-channel head inputs, ranks 102-145: up to +13, against +0
#: to +1 cold); the cold solve's two steps run instead.
WARM_MAX_ROW_FRACTION = 1 / 8
#: Where asked to, a final block at most this fraction of the rows keeps
#: its projection ``Q^T X``, so the Tucker core does not multiply the mode
#: again (:func:`~.tucker.tucker_core`): SegFormer-B0's fusion input,
#: block 52 of 1024 rows, saves a product of its rank with the 8 M
#: elements of the input. It costs at most this fraction of the input's
#: elements (in float32) while the block is rotated to the kept vectors,
#: then their rank's share until the core is formed.
PROJECTION_MAX_ROW_FRACTION = 1 / 8


def _gaussian_block(rows: int, cols: int, like: ModeUnfolding,
                    generator: torch.Generator) -> torch.Tensor:
    return torch.randn(rows, cols, generator=generator, dtype=like.dtype,
                       device=like.device)


def _check_block_width(width: int, rows: int) -> None:
    """Gives up when the block would span more than half of the rows."""
    if 2 * width > rows:
        raise SolverUnsuitable(
            f'the block would need {width} of the {rows} rows, more than '
            'half: the full eigendecomposition is cheaper')


class RitzBlock(NamedTuple):
    """The result of :func:`ritz_leading_block`.

    Attributes:
        values: The Ritz values (captured energies) of the final block, in
            descending order.
        vectors: Its Ritz vectors as orthonormal columns (m, w).
        rank: The fewest leading ones, with ``values[:rank].sum() >= eps *
            ||X||_F^2``.
        projection: ``vectors[:, :rank]^T X``, shape (rank, n), the
            columns in the order of
            :meth:`~.mode_unfolding.ModeUnfolding.projected_gram`; None
            when not asked for, for a block wider than
            :data:`PROJECTION_MAX_ROW_FRACTION` of the rows, and for an
            all-zero X.
    """
    values: torch.Tensor
    vectors: torch.Tensor
    rank: int
    projection: Optional[torch.Tensor]


def _rayleigh_ritz(
        matrix: ModeUnfolding, block: torch.Tensor, power_steps: int,
        keep_projection: bool
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """Ritz pairs of ``X X^T`` on the span of ``block``.

    Returns:
        ``(values, basis, rotation, projection)``: the Ritz values in
        descending order, the refined block's orthonormal basis, the
        rotation of it that gives the Ritz vectors, and ``basis^T X`` (None
        unless ``keep_projection``, or for a block wider than
        :data:`PROJECTION_MAX_ROW_FRACTION` of the rows).
    """
    basis = block
    for _ in range(power_steps):
        basis = torch.linalg.qr(matrix.gram_times(basis)).Q
    rows, columns = matrix.shape
    projection = None
    if (keep_projection
            and basis.shape[1] <= rows * PROJECTION_MAX_ROW_FRACTION):
        projection = basis.new_empty(basis.shape[1], columns)
    # Q^T X X^T Q from one product with X per column block
    values, rotation = torch.linalg.eigh(
        matrix.projected_gram(basis, projection))
    if not bool(torch.isfinite(rotation).all()):
        raise SolverUnsuitable('the Ritz vectors are not finite')
    return values.flip(0).clamp_min(0), basis, rotation.flip(1), projection


def next_start(vectors: torch.Tensor, rank: int) -> Optional[torch.Tensor]:
    """The block a warm-started next solve starts from, or None.

    Args:
        vectors: The final Ritz block of a solve, leading vectors first.
        rank: The rank that solve found.

    Returns:
        The leading ``rank`` + :data:`OVERSAMPLE` vectors, or None when
        they are more than :data:`WARM_MAX_ROW_FRACTION` of the rows (the
        next solve would not use them: keeping them costs memory only).
    """
    block = vectors[:, :rank + OVERSAMPLE]
    if block.shape[1] > vectors.shape[0] * WARM_MAX_ROW_FRACTION:
        return None
    return block


def _first_block(rows: int, start: Optional[torch.Tensor],
                 like: ModeUnfolding, generator: torch.Generator
                 ) -> Tuple[torch.Tensor, int]:
    """The first block and its number of subspace-iteration steps."""
    if (start is None or start.shape[0] != rows or start.shape[1] == 0
            or start.shape[1] > rows * WARM_MAX_ROW_FRACTION):
        _check_block_width(FIRST_BLOCK, rows)
        return _gaussian_block(rows, FIRST_BLOCK, like,
                               generator), POWER_STEPS
    return start.to(device=like.device,
                    dtype=like.dtype), WARM_POWER_STEPS


def ritz_leading_block(
        matrix: Union[torch.Tensor, ModeUnfolding],
        eps: float,
        seed: int = 0,
        start: Optional[torch.Tensor] = None,
        keep_projection: bool = False) -> RitzBlock:
    """The Ritz block whose leading vectors reach ``eps`` of the energy.

    :func:`ritz_leading_vectors` keeps the leading ``rank`` pairs; the
    pairs after them are the start of a warm-started next solve (see
    :mod:`.warm_start`).

    Args:
        matrix: Matrix X of shape (m, n) in float32 or float64, or a
            :class:`~.mode_unfolding.ModeUnfolding`.
        eps: Explained-variance threshold in (0, 1]; at 1 every vector is
            needed and the solver gives up.
        seed: Seed of the random blocks. A private generator is used, so the
            global random state (dropout, data augmentation) is untouched and
            the result is the same for the same input, seed and ``start``.
        start: The first block (m, w), usually the leading Ritz vectors
            (rank plus :data:`OVERSAMPLE`) of the previous step's
            activation, refined by :data:`WARM_POWER_STEPS` steps. Ignored
            when None, empty, of another row count, or wider than
            :data:`WARM_MAX_ROW_FRACTION` of the rows.
        keep_projection: Whether to return the projection of X on the
            leading vectors, which the last Rayleigh-Ritz step forms
            anyway, where the block is narrow enough.

    Returns:
        A :class:`RitzBlock`: the final block's Ritz values and vectors,
        the rank that reaches ``eps``, and the projection of X on the
        leading ``rank`` vectors (where asked for and the block was
        narrow enough).

    Raises:
        ValueError: If eps is not in (0, 1].
        SolverUnsuitable: At eps = 1, when the block would need more than
            half of the m rows, or when the matrix or its products are not
            finite (the full eigendecomposition, the fallback, then names
            the problem).
    """
    if check_eps(eps) >= 1.0:
        raise SolverUnsuitable(f'the Ritz solver needs eps < 1, got {eps!r}; '
                               'use the full eigendecomposition at eps = 1')
    matrix = as_unfolding(matrix)
    rows = matrix.shape[0]
    total = matrix.energy()
    if not math.isfinite(total):
        raise SolverUnsuitable('the matrix holds NaN or Inf, or its energy '
                               'overflows')
    if total == 0.0:
        return RitzBlock(
            torch.zeros(0, dtype=matrix.dtype, device=matrix.device),
            torch.zeros(rows, 0, dtype=matrix.dtype, device=matrix.device),
            0, None)
    target = eps * total
    generator = torch.Generator(device=matrix.device).manual_seed(seed)
    block, power_steps = _first_block(rows, start, matrix, generator)
    width = block.shape[1]
    while True:
        values, basis, rotation, projection = _rayleigh_ritz(
            matrix, block, power_steps, keep_projection)
        if not bool(torch.isfinite(values).all()):
            raise SolverUnsuitable('the Ritz values are not finite')
        vectors = basis @ rotation
        captured = torch.cumsum(values.double(), 0)
        if float(captured[-1]) >= target:
            rank = int((captured < target).sum()) + 1
            if projection is not None:
                projection = rotation[:, :rank].t() @ projection
            return RitzBlock(values, vectors, rank, projection)
        del projection
        # estimate: each missing component holds about the smallest Ritz
        # value (an underestimate only makes the fallback come earlier)
        smallest = max(float(values[-1]), total * 1e-12)
        missing = math.ceil((target - float(captured[-1])) / smallest)
        width = max(2 * width, width + missing + OVERSAMPLE)
        _check_block_width(width, rows)
        power_steps = POWER_STEPS
        block = torch.cat([
            vectors,
            _gaussian_block(rows, width - vectors.shape[1], matrix,
                            generator)
        ], 1)


def ritz_leading_vectors(
        matrix: Union[torch.Tensor, ModeUnfolding],
        eps: float,
        seed: int = 0,
        start: Optional[torch.Tensor] = None
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Fewest leading left singular vectors reaching ``eps`` of the energy.

    Args:
        matrix: Matrix X of shape (m, n) in float32 or float64, or a
            :class:`~.mode_unfolding.ModeUnfolding`.
        eps: Explained-variance threshold in (0, 1).
        seed: Seed of the random blocks (see :func:`ritz_leading_block`).
        start: The first block, or None (see :func:`ritz_leading_block`).

    Returns:
        ``(energy, vectors)``: the Ritz values (captured energies) of the k
        returned vectors and the vectors as orthonormal columns (m, k), with
        ``energy.sum() >= eps * ||X||_F^2``.

    Raises:
        ValueError: If eps is not in (0, 1].
        SolverUnsuitable: As :func:`ritz_leading_block`.
    """
    values, vectors, rank, _ = ritz_leading_block(matrix, eps, seed, start)
    return values[:rank], vectors[:, :rank]
