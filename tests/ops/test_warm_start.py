"""The Ritz solver's warm start: same guarantee, fewer products."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from mmseg_hosvd.ops import (
    DecompositionSettings,
    WarmStart,
    check_warm_start,
    hosvd,
    ritz,
    tucker_to_tensor,
    unfold,
)
from mmseg_hosvd.ops.mode_unfolding import ModeUnfolding
from mmseg_hosvd.ops.ritz import OVERSAMPLE, ritz_leading_block

from .spectra import (
    captured_fraction,
    exact_rank,
    low_rank_wide_activation,
    matrix_with_spectrum,
)


def _next_start(matrix, eps, start=None):
    _, vectors, rank, _ = ritz_leading_block(matrix, eps, start=start)
    return vectors[:, :rank], vectors[:, :rank + OVERSAMPLE]


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(300, 400), decay=st.floats(0.8, 0.9),
       eps=st.floats(0.5, 0.95), noise=st.floats(0.0, 1.0),
       dtype=st.sampled_from([torch.float32, torch.float64]),
       seed=st.integers(0, 2**16))
def test_a_warm_start_keeps_the_eps_guarantee(rows, decay, eps, noise,
                                              dtype, seed):
    spectrum = [decay**i for i in range(rows)]
    before = matrix_with_spectrum(spectrum, rows + 50, dtype, seed)
    # the next step's activation: the same kind of matrix, moved by noise
    # (at 1.0 the start is no better than random vectors)
    after = before + noise * matrix_with_spectrum(spectrum, rows + 50, dtype,
                                                  seed + 1)
    # ranks of at most 14 (decay 0.9, eps 0.95): the start (rank + 16) is
    # within an eighth of the rows, so it is used
    _, start = _next_start(before, eps)
    assert start.shape[1] <= rows * ritz.WARM_MAX_ROW_FRACTION
    vectors, _ = _next_start(after, eps, start)
    k = vectors.shape[1]
    assert_close(vectors.t() @ vectors, torch.eye(k, dtype=dtype),
                 atol=1e-4, rtol=0)
    assert captured_fraction(vectors, after) >= eps - 1e-5
    assert k >= exact_rank(after.double(), eps) - (dtype == torch.float32)


class _CountingUnfolding(ModeUnfolding):
    """Counts the products with X that the solver asks for."""

    def __init__(self, matrix):
        super().__init__(matrix, 0)
        self.products = []

    def gram_times(self, block):
        self.products.append(('gram_times', block.shape[1]))
        return super().gram_times(block)

    def projected_gram(self, block, projection=None):
        self.products.append(('projected_gram', block.shape[1]))
        return super().projected_gram(block, projection)


def test_a_warm_start_takes_one_power_step_on_its_own_block():
    matrix = matrix_with_spectrum([0.9**i for i in range(400)], 500)
    cold = _CountingUnfolding(matrix)
    _, start = _next_start(cold, 0.9)
    # cold: one block of 32 (rank 11 fits), POWER_STEPS products, then
    # the projection
    assert ritz.POWER_STEPS == 2
    assert cold.products == [('gram_times', ritz.FIRST_BLOCK)] * 2 + [
        ('projected_gram', ritz.FIRST_BLOCK)]
    warm = _CountingUnfolding(matrix)
    vectors, _ = _next_start(warm, 0.9, start)
    width = start.shape[1]
    assert warm.products == [('gram_times', width),
                             ('projected_gram', width)]
    assert vectors.shape[1] == exact_rank(matrix, 0.9)


def test_a_start_of_another_size_empty_or_too_wide_is_ignored():
    """Too wide: more than an eighth of the rows, where one step leaves
    the rank well above the exact one."""
    matrix = matrix_with_spectrum([0.9**i for i in range(320)], 320)
    cold = ritz_leading_block(matrix, 0.8)
    for start in (torch.randn(200, 30, dtype=torch.float64),
                  torch.zeros(320, 0, dtype=torch.float64),
                  torch.randn(320, 41, dtype=torch.float64)):
        ignored = ritz_leading_block(matrix, 0.8, start=start)
        assert torch.equal(cold.vectors, ignored.vectors)
        assert cold.rank == ignored.rank
    counting = _CountingUnfolding(matrix)
    ritz_leading_block(counting, 0.8,
                       start=torch.randn(320, 40, dtype=torch.float64))
    assert counting.products == [('gram_times', 40), ('projected_gram', 40)]


def test_a_block_too_wide_to_start_from_is_not_kept():
    """Rank + 16 above an eighth of the rows: the next solve would not
    start from it, so keeping it would only cost memory."""
    from mmseg_hosvd.ops.solvers import ritz_solver
    vectors = torch.linalg.qr(torch.randn(320, 60, dtype=torch.float64)).Q
    assert ritz.next_start(vectors, 24).shape == (320, 40)  # 320 / 8
    assert ritz.next_start(vectors, 25) is None
    matrix = matrix_with_spectrum([1.0] * 40 + [0.01] * 280, 400)
    found, kept, _ = ritz_solver(ModeUnfolding(matrix, 0),
                                 DecompositionSettings(0.9))
    assert found.shape[1] >= exact_rank(matrix, 0.9) >= 36
    assert kept is None


def test_warm_start_keeps_a_compact_copy_per_mode_and_forgets_on_none():
    memory = WarmStart()
    block = torch.randn(64, 40)
    memory.keep(1, block[:, :10])
    kept = memory.get(1, 64)
    assert torch.equal(kept, block[:, :10])
    assert kept.untyped_storage().nbytes() == kept.numel() * 4
    assert memory.get(1, 63) is None and memory.get(0, 64) is None
    memory.keep(1, None)
    assert memory.get(1, 64) is None and len(memory) == 0
    memory.keep(2, block)
    memory.clear()
    assert len(memory) == 0


@pytest.mark.parametrize('bad', [1, 'yes', None])
def test_warm_start_switch_is_checked(bad):
    with pytest.raises(ValueError, match=f'warm_start must be True or False, '
                       f'got {bad!r}'):
        check_warm_start(bad)


def test_hosvd_keeps_the_ritz_modes_and_starts_the_next_call_from_them(
        ritz_calls):
    x = low_rank_wide_activation()
    memory = WarmStart()
    settings_ = DecompositionSettings(0.9)
    first = hosvd(x, settings=settings_, warm_start=memory)
    assert len(memory) == 1 and memory.get(1, 320) is not None  # channels
    assert torch.equal(first[1][1], hosvd(x, settings=settings_)[1][1])
    moved = x + 0.05 * low_rank_wide_activation(seed=1)
    core, factors = hosvd(moved, settings=settings_, warm_start=memory)
    assert ritz_calls == [(320, 120)] * 3
    for mode, factor in enumerate(factors):
        assert captured_fraction(factor, unfold(moved, mode)) >= 0.9 - 1e-9
    cold = hosvd(moved, settings=settings_)
    assert core.shape[1] >= cold[0].shape[1]
    # the HOSVD bound: each mode loses at most 1 - eps of the energy
    error = (tucker_to_tensor((core, factors)) - moved).square().sum()
    assert float(error / moved.square().sum()) <= 4 * (1 - 0.9)


def test_hosvd_forgets_a_mode_that_the_eigensolver_took():
    x = low_rank_wide_activation()
    memory = WarmStart()
    hosvd(x, eps=0.9, warm_start=memory)
    assert len(memory) == 1
    hosvd(x, settings=DecompositionSettings(0.9, 'eigh'), warm_start=memory)
    assert len(memory) == 0


def test_shared_input_layers_keep_one_warm_start(ritz_calls, monkeypatch):
    """Layers sharing one input decompose it once, from the first layer's
    warm start; the second step starts from it."""
    import mmseg_hosvd.ops.solvers as solvers
    from mmseg_hosvd.models import Conv2dHOSVD
    from mmseg_hosvd.ops import SharedDecomposition
    starts = []
    counting = solvers.ritz_leading_block

    def spy(matrix, eps, seed=0, start=None, **options):
        starts.append(start)
        return counting(matrix, eps, seed, start, **options)

    monkeypatch.setattr(solvers, 'ritz_leading_block', spy)
    shared = SharedDecomposition()
    convs = [Conv2dHOSVD(320, 4, k, padding=k // 2, eps=0.9,
                         shared_input=shared) for k in (1, 3)]
    for step in range(2):
        x = low_rank_wide_activation(seed=step).float()
        sum(conv(x).square().sum() for conv in convs).backward()
    assert len(ritz_calls) == 2  # one channel-mode solve per step
    assert starts[0] is None and starts[1] is not None
    assert len(convs[0].warm_start) == 1 and len(convs[1].warm_start) == 0
