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
"""
import math
from typing import Tuple, Union

import torch

from .checks import SolverUnsuitable, check_eps
from .mode_unfolding import ModeUnfolding, as_unfolding

#: Extra columns of the random block beyond the rank it aims at.
OVERSAMPLE = 16
#: Subspace-iteration steps per block (each one QR-orthonormalised).
POWER_STEPS = 2
#: Columns of the first block when no rank is known yet.
FIRST_BLOCK = 32


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


def _rayleigh_ritz(matrix: ModeUnfolding, block: torch.Tensor
                   ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Ritz pairs of ``X X^T`` on the span of ``block``.

    Returns:
        ``(values, vectors)`` in descending order; ``vectors`` has
        orthonormal columns spanning the refined block.
    """
    basis = block
    for _ in range(POWER_STEPS):
        basis = torch.linalg.qr(matrix.gram_times(basis)).Q
    # Q^T X X^T Q from one product with X per column block
    values, rotation = torch.linalg.eigh(matrix.projected_gram(basis))
    if not bool(torch.isfinite(rotation).all()):
        raise SolverUnsuitable('the Ritz vectors are not finite')
    return values.flip(0).clamp_min(0), basis @ rotation.flip(1)


def ritz_leading_vectors(matrix: Union[torch.Tensor, ModeUnfolding],
                         eps: float,
                         seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """Fewest leading left singular vectors reaching ``eps`` of the energy.

    Args:
        matrix: Matrix X of shape (m, n) in float32 or float64, or a
            :class:`~.mode_unfolding.ModeUnfolding`.
        eps: Explained-variance threshold in (0, 1]; at 1 every vector is
            needed and the solver gives up.
        seed: Seed of the random blocks. A private generator is used, so the
            global random state (dropout, data augmentation) is untouched and
            the result is the same for the same input and seed.

    Returns:
        ``(energy, vectors)``: the Ritz values (captured energies) of the k
        returned vectors and the vectors as orthonormal columns (m, k), with
        ``energy.sum() >= eps * ||X||_F^2``.

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
        return (torch.zeros(0, dtype=matrix.dtype, device=matrix.device),
                torch.zeros(rows, 0, dtype=matrix.dtype,
                            device=matrix.device))
    target = eps * total
    generator = torch.Generator(device=matrix.device).manual_seed(seed)
    width = FIRST_BLOCK
    _check_block_width(width, rows)
    block = _gaussian_block(rows, width, matrix, generator)
    while True:
        values, vectors = _rayleigh_ritz(matrix, block)
        if not bool(torch.isfinite(values).all()):
            raise SolverUnsuitable('the Ritz values are not finite')
        captured = torch.cumsum(values.double(), 0)
        if float(captured[-1]) >= target:
            rank = int((captured < target).sum()) + 1
            return values[:rank], vectors[:, :rank]
        # estimate: each missing component holds about the smallest Ritz
        # value (an underestimate only makes the fallback come earlier)
        smallest = max(float(values[-1]), total * 1e-12)
        missing = math.ceil((target - float(captured[-1])) / smallest)
        width = max(2 * width, width + missing + OVERSAMPLE)
        _check_block_width(width, rows)
        block = torch.cat([
            vectors,
            _gaussian_block(rows, width - vectors.shape[1], matrix,
                            generator)
        ], 1)
