"""Shared mode solves: the decompositions a grid of settings gives are
those each setting gives alone, with each mode solved once per eps."""
import pytest
import torch

from mmseg_hosvd.ops import DecompositionSettings, WarmStart, hosvd
from mmseg_hosvd.ops.shared_solves import shared_mode_solves, solve_cold

from .spectra import low_rank_wide_activation

EPS_GRID = (0.6, 0.8, 0.95)
SPATIAL_GRID = (0.7, 0.9)


def grid_settings(keep_batch=True):
    return [DecompositionSettings(eps, keep_batch=keep_batch,
                                  spatial_eps=spatial)
            for eps in EPS_GRID for spatial in SPATIAL_GRID]


def assert_same(got, want):
    (core, factors), (want_core, want_factors) = got, want
    assert torch.equal(core, want_core)
    assert len(factors) == len(want_factors)
    for factor, want_factor in zip(factors, want_factors, strict=True):
        assert torch.equal(factor, want_factor)


@pytest.mark.parametrize('keep_batch', [True, False])
def test_a_grid_decomposes_as_each_setting_alone(ritz_calls, keep_batch):
    x = low_rank_wide_activation(channels=320).float()
    alone = [hosvd(x, settings=s) for s in grid_settings(keep_batch)]
    assert len(ritz_calls) == len(alone)
    ritz_calls.clear()
    with shared_mode_solves() as shared:
        together = [hosvd(x, settings=s) for s in grid_settings(keep_batch)]
    for got, want in zip(together, alone, strict=True):
        assert_same(got, want)
    # the channel mode (Ritz) is solved once per eps, not once per pair
    assert len(ritz_calls) == len(EPS_GRID)
    modes = 3 if keep_batch else 4
    assert shared.solved + shared.reused == modes * len(alone)
    assert shared.reused > 0


def test_only_what_a_solver_reads_is_shared():
    x = low_rank_wide_activation(channels=320).float()
    with shared_mode_solves() as shared:
        for seed in (0, 1):
            hosvd(x, settings=DecompositionSettings(0.8, seed=seed))
            hosvd(x, settings=DecompositionSettings(0.8, 'eigh', seed))
    # four modes each: two seeds, two solvers; nothing in common
    assert (shared.solved, shared.reused) == (16, 0)


def test_a_tensor_changed_in_place_is_solved_again(ritz_calls):
    x = low_rank_wide_activation(channels=320).float()
    settings = DecompositionSettings(0.8)
    with shared_mode_solves():
        before = hosvd(x, settings=settings)
        x.mul_(-1).add_(torch.rand_like(x))
        after = hosvd(x, settings=settings)
    assert len(ritz_calls) == 2
    assert_same(after, hosvd(x, settings=settings))
    assert not torch.equal(before[0].abs(), after[0].abs())


def test_another_tensor_of_the_same_values_is_solved_again(ritz_calls):
    x = low_rank_wide_activation(channels=320).float()
    with shared_mode_solves():
        hosvd(x, settings=DecompositionSettings(0.8))
        hosvd(x.clone(), settings=DecompositionSettings(0.8))
    assert len(ritz_calls) == 2


def test_warm_started_solves_are_not_shared(ritz_calls):
    x = low_rank_wide_activation(channels=320).float()
    settings = DecompositionSettings(0.8)
    warm = WarmStart()
    with shared_mode_solves() as shared:
        hosvd(x, settings=settings, warm_start=warm)
        # the channel mode now starts from the kept block: solved again
        hosvd(x, settings=settings, warm_start=warm)
    assert len(ritz_calls) == 2
    assert shared.solved == 4


def test_outside_the_context_every_solve_runs():
    calls = []

    def solve():
        calls.append(1)
        return len(calls)

    x = torch.ones(3)
    settings = DecompositionSettings(0.8)
    assert [solve_cold(x, 0, settings, solve) for _ in range(2)] == [1, 2]
    with shared_mode_solves():
        assert [solve_cold(x, 0, settings, solve)
                for _ in range(2)] == [3, 3]
    assert solve_cold(x, 0, settings, solve) == 4


def test_a_dead_tensor_s_solution_is_not_handed_to_its_successor():
    """A new tensor at the address (the id) of a freed one is solved
    again, and so is an inference-mode tensor, which keeps no version."""
    settings = DecompositionSettings(0.8)
    with shared_mode_solves() as shared:
        first = torch.ones(3)
        freed = id(first)
        assert solve_cold(first, 0, settings, lambda: 'first') == 'first'
        del first
        successor = next(t for t in (torch.zeros(3) for _ in range(1000))
                         if id(t) == freed)
        assert solve_cold(successor, 0, settings, lambda: 'new') == 'new'
        with torch.inference_mode():
            frozen = torch.ones(3)
        for value in ('a', 'b'):
            assert solve_cold(frozen, 0, settings, lambda v=value: v) == value
    assert shared.reused == 0
