"""The solver table, its explicit fallbacks and forced solvers."""
from types import MappingProxyType

import pytest
import torch
from torch.testing import assert_close

from mmseg_hosvd.ops import (
    SOLVER_TABLE,
    SOLVERS,
    DecompositionSettings,
    SolverUnsuitable,
    hosvd,
    leading_vectors,
    tucker_to_tensor,
    unfold,
)
from mmseg_hosvd.ops.solvers import (
    RITZ_ROWS_PER_ASPECT,
    Solver,
    auto_policy,
    eigh_solver,
    ritz_solver,
)

from .spectra import (
    captured_fraction,
    exact_rank,
    low_rank_wide_activation,
    matrix_with_spectrum,
)


def test_the_table_lists_eigh_and_ritz_and_ritz_falls_back_to_eigh():
    assert sorted(SOLVER_TABLE) == ['eigh', 'ritz']
    assert SOLVER_TABLE['eigh'] == Solver(eigh_solver, None)
    assert SOLVER_TABLE['ritz'] == Solver(ritz_solver, 'eigh')
    assert SOLVERS == ('auto', 'eigh', 'ritz')
    with pytest.raises(TypeError):
        SOLVER_TABLE['lobpcg'] = SOLVER_TABLE['eigh']


@pytest.mark.parametrize('eps', [0.5, 0.8, 0.9])
def test_forced_ritz_reaches_eps_where_auto_takes_eigh(eps, ritz_calls):
    cols = 300**2 // RITZ_ROWS_PER_ASPECT + 100  # too wide for 'auto'
    matrix = matrix_with_spectrum([0.9**i for i in range(300)], cols)
    assert auto_policy(matrix.shape, eps) == 'eigh'
    vectors = leading_vectors(matrix, eps, 'ritz')
    assert ritz_calls == [(300, cols)]
    k = vectors.shape[1]
    assert_close(vectors.t() @ vectors, torch.eye(k, dtype=vectors.dtype))
    assert captured_fraction(vectors, matrix) >= eps
    assert exact_rank(matrix, eps) <= k <= exact_rank(matrix, eps) + 1


@pytest.mark.parametrize('eps', [0.8, 0.9, 0.99])
def test_hosvd_forced_ritz_matches_eigh_on_a_wide_low_rank_activation(
        eps, ritz_calls):
    x = low_rank_wide_activation()
    core_r, factors_r = hosvd(x, eps=eps, solver='ritz')
    assert len(ritz_calls) == 4  # every mode tried, the small ones fell back
    core_e, factors_e = hosvd(x, eps=eps, solver='eigh')
    assert core_r.shape == core_e.shape
    for mode in (0, 2, 3):
        assert torch.equal(factors_r[mode], factors_e[mode])
    assert captured_fraction(factors_r[1], unfold(x, 1)) >= eps
    assert_close(tucker_to_tensor((core_r, factors_r)),
                 tucker_to_tensor((core_e, factors_e)), atol=1e-8, rtol=1e-8)
    core_a, _ = hosvd(x, eps=eps, solver='auto')
    assert torch.equal(core_r, core_a)


@pytest.mark.parametrize('spectrum,cols,eps', [
    ([0.9**i for i in range(300)], 400, 1.0),  # eps = 1: every vector
    ([0.8**i for i in range(40)], 90, 0.8),    # too few rows for a block
    ([1.0] * 300, 400, 0.8),                   # flat: block past half
], ids=['eps-one', 'small', 'flat'])
def test_forced_ritz_where_it_cannot_work_gives_the_eigh_result(
        spectrum, cols, eps, ritz_calls):
    matrix = matrix_with_spectrum(spectrum, cols, torch.float32)
    forced = leading_vectors(matrix, eps, 'ritz')
    assert len(ritz_calls) == 1
    assert torch.equal(forced, leading_vectors(matrix, eps, 'eigh'))


def test_hosvd_forced_ritz_is_exact_at_eps_one():
    x = low_rank_wide_activation()
    core, factors = hosvd(x, eps=1.0, solver='ritz')
    core_e, factors_e = hosvd(x, eps=1.0, solver='eigh')
    assert torch.equal(core, core_e)
    assert all(torch.equal(a, b) for a, b in zip(factors, factors_e,
                                                 strict=True))
    assert_close(tucker_to_tensor((core, factors)), x)


def test_leading_vectors_runs_the_declared_fallbacks_in_order(monkeypatch):
    import mmseg_hosvd.ops.decomposition as decomposition
    tried = []

    def giving_up(name):

        def solve(matrix, settings, start=None, keep_projection=False):
            tried.append(name)
            raise SolverUnsuitable(f'{name} gives up')

        return solve

    monkeypatch.setattr(
        decomposition, 'SOLVER_TABLE',
        MappingProxyType({
            'eigh': Solver(giving_up('eigh'), None),
            'ritz': Solver(giving_up('ritz'), 'eigh'),
        }))
    with pytest.raises(SolverUnsuitable, match='eigh gives up') as error:
        leading_vectors(torch.randn(300, 300), 0.8, 'ritz')
    assert tried == ['ritz', 'eigh']
    assert error.value.reason == 'eigh gives up'


def test_the_seed_reaches_the_ritz_block_through_hosvd():
    x = low_rank_wide_activation()
    eps = 0.9
    first = hosvd(x, eps=eps, seed=0)
    again = hosvd(x, eps=eps, seed=0)
    other = hosvd(x, eps=eps, seed=7)
    assert all(torch.equal(a, b)
               for a, b in zip([first[0], *first[1]], [again[0], *again[1]],
                               strict=True))
    assert not torch.equal(first[1][1], other[1][1])  # the Ritz mode
    for mode in (0, 2, 3):  # eigh modes: no randomness
        assert torch.equal(first[1][mode], other[1][mode])
    assert captured_fraction(other[1][1], unfold(x, 1)) >= eps
    assert other[1][1].shape[1] >= exact_rank(unfold(x, 1), eps)
    via_settings = hosvd(x, settings=DecompositionSettings(eps, seed=7))
    assert torch.equal(via_settings[0], other[0])
    assert torch.equal(via_settings[1][1], other[1][1])
