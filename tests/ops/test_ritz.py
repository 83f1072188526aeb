import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from mmseg_hosvd.ops import (
    SolverUnsuitable,
    check_solver,
    hosvd,
    leading_vectors,
    ritz_leading_vectors,
    tucker_core,
    tucker_to_tensor,
    unfold,
)
from mmseg_hosvd.ops import tucker as tucker_module
from mmseg_hosvd.ops.decomposition import RITZ_MIN_SIZE, uses_ritz
from mmseg_hosvd.ops.ritz import ritz_leading_block

from .spectra import (
    captured_fraction,
    exact_rank,
    low_rank_wide_activation,
    matrix_with_spectrum,
)


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(64, 300), extra_cols=st.integers(0, 200),
       decay=st.floats(0.5, 0.995), eps=st.floats(0.3, 0.99),
       dtype=st.sampled_from([torch.float32, torch.float64]),
       seed=st.integers(0, 2**16))
def test_ritz_keeps_the_eps_guarantee_and_never_undershoots(
        rows, extra_cols, decay, eps, dtype, seed):
    spectrum = [decay**i for i in range(rows)]
    matrix = matrix_with_spectrum(spectrum, rows + extra_cols, dtype, seed)
    try:
        energy, vectors = ritz_leading_vectors(matrix, eps)
    except SolverUnsuitable:  # the caller falls back to the full eigensolver
        return
    k = vectors.shape[1]
    assert energy.shape == (k, )
    assert_close(vectors.t() @ vectors, torch.eye(k, dtype=dtype),
                 atol=1e-4, rtol=0)
    assert captured_fraction(vectors, matrix) >= eps - 1e-5
    assert k >= exact_rank(matrix.double(), eps) - (dtype == torch.float32)


@pytest.mark.parametrize('eps', [0.5, 0.8, 0.9])
def test_ritz_rank_is_exact_on_a_decaying_spectrum(eps):
    matrix = matrix_with_spectrum([0.9**i for i in range(512)], 600)
    energy, vectors = ritz_leading_vectors(matrix, eps)
    assert vectors.shape[1] == exact_rank(matrix, eps)
    exact = torch.linalg.svdvals(matrix)[:vectors.shape[1]]**2
    assert_close(energy, exact, rtol=1e-6, atol=0)


def test_ritz_gives_up_on_a_flat_spectrum_and_leading_vectors_falls_back():
    matrix = matrix_with_spectrum([1.0] * 300, 400, torch.float32)
    with pytest.raises(SolverUnsuitable, match='more than half'):
        ritz_leading_vectors(matrix, 0.8)
    vectors = leading_vectors(matrix, 0.8)
    assert vectors.shape[1] == exact_rank(matrix, 0.8)


def test_ritz_is_deterministic_and_leaves_the_global_rng_alone():
    matrix = matrix_with_spectrum([0.8**i for i in range(300)], 300)
    state = torch.get_rng_state()
    first = ritz_leading_vectors(matrix, 0.9)[1]
    second = ritz_leading_vectors(matrix, 0.9)[1]
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first, second)


def test_ritz_of_a_zero_matrix_keeps_nothing():
    energy, vectors = ritz_leading_vectors(torch.zeros(300, 50), 0.9)
    assert energy.numel() == 0 and vectors.shape == (300, 0)


def test_ritz_grows_its_block_until_eps_is_reached():
    # rank 200 of 600 with equal values: the first block of 32 misses most
    spectrum = [1.0] * 200 + [1e-4] * 400
    matrix = matrix_with_spectrum(spectrum, 700)
    energy, vectors = ritz_leading_vectors(matrix, 0.949)
    assert vectors.shape[1] == exact_rank(matrix, 0.949) == 190
    assert captured_fraction(vectors, matrix) >= 0.949


def test_a_narrow_ritz_block_keeps_the_projection_of_its_vectors():
    matrix = matrix_with_spectrum([0.9**i for i in range(512)], 600)
    found = ritz_leading_block(matrix, 0.8, keep_projection=True)
    assert found.vectors.shape[1] * 8 <= 512  # the first block of 32
    assert_close(found.projection,
                 found.vectors[:, :found.rank].t() @ matrix)
    assert ritz_leading_block(matrix, 0.8).projection is None  # not asked
    # 32 columns are more than an eighth of 200 rows: nothing is kept
    wide = matrix_with_spectrum([0.9**i for i in range(200)], 300)
    assert ritz_leading_block(wide, 0.8,
                              keep_projection=True).projection is None


@pytest.mark.parametrize('channels_last', [False, True])
def test_the_hosvd_core_reuses_the_ritz_projection(channels_last,
                                                   monkeypatch):
    x = low_rank_wide_activation()
    if channels_last:  # the layout transformer heads give the fusion conv
        x = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    assert uses_ritz((x.shape[1], x.numel() // x.shape[1]), 0.9, 'auto')
    core, factors = hosvd(x, eps=0.9)
    from_the_tensor = tucker_core(x, factors)

    def refused(*args):
        raise AssertionError('the core multiplied the tensor again')

    monkeypatch.setattr(tucker_module, '_first_product', refused)
    assert_close(core, from_the_tensor)
    assert_close(hosvd(x, eps=0.9)[0], from_the_tensor)


def test_of_several_projections_the_core_starts_from_the_smallest(
        monkeypatch):
    """Two large low-rank modes, both solved by Ritz: the core reuses the
    projection that shrinks its mode most, and is the core of the
    factors."""
    import mmseg_hosvd.ops.decomposition as decomposition
    gen = torch.Generator().manual_seed(0)
    parts = [torch.randn(size, rank, generator=gen, dtype=torch.float64)
             for size, rank in ((300, 3), (400, 6), (3, 3))]
    x = torch.einsum('abc,ia,jb,kc->ijk',
                     torch.randn(3, 6, 3, generator=gen,
                                 dtype=torch.float64), *parts)
    used = []
    real = decomposition.tucker_core_in_order

    def spy(dense, order, factors, projected=None):
        used.append(projected[0])
        return real(dense, order, factors, projected)

    monkeypatch.setattr(decomposition, 'tucker_core_in_order', spy)
    core, factors = hosvd(x, eps=0.99, solver='ritz')
    ranks = [f.shape[1] for f in factors]
    assert ranks[:2] == [3, 6] and used == [0]  # 3 / 300 < 6 / 400
    assert_close(core, tucker_core(x, factors))


@pytest.mark.parametrize('eps', [0.8, 0.9, 0.99])
def test_hosvd_auto_matches_eigh_on_a_wide_low_rank_activation(eps):
    x = low_rank_wide_activation()
    assert x.shape[1] >= RITZ_MIN_SIZE
    core_a, factors_a = hosvd(x, eps=eps, solver='auto')
    core_e, factors_e = hosvd(x, eps=eps, solver='eigh')
    assert core_a.shape == core_e.shape
    assert_close(tucker_to_tensor((core_a, factors_a)),
                 tucker_to_tensor((core_e, factors_e)), atol=1e-8, rtol=1e-8)
    channels = unfold(x, 1)
    assert captured_fraction(factors_a[1], channels) >= eps


def test_hosvd_auto_is_exact_at_eps_one():
    x = low_rank_wide_activation()
    core, factors = hosvd(x, eps=1.0)
    assert core.shape == x.shape
    assert_close(tucker_to_tensor((core, factors)), x)


@pytest.mark.parametrize('bad', ['lobpcg', 'EIGH', None, 1])
def test_unknown_solver_is_named(bad):
    with pytest.raises(ValueError, match='solver must be one of'):
        check_solver(bad)
    with pytest.raises(ValueError, match=repr(bad)):
        hosvd(torch.randn(2, 2, 2, 2), eps=0.5, solver=bad)


@pytest.mark.parametrize('shape,eps,solver,expected', [
    ((1024, 2048), 0.8, 'auto', True),   # PSPNet bottleneck channel mode
    ((512, 2048), 0.9, 'auto', True),    # DeepLabV3 ASPP input
    ((512, 32768), 0.8, 'auto', False),  # too wide: Gram is cheaper
    ((1024, 8192), 0.8, 'auto', True),   # SegFormer-B0 fusion input
    ((640, 8192), 0.8, 'auto', False),   # past the crossover at 640 rows
    ((256, 1024), 0.8, 'auto', True),
    ((256, 1025), 0.8, 'auto', False),
    ((255, 300), 0.8, 'auto', False),    # small: eigh is cheap
    ((1024, 2048), 1.0, 'auto', False),  # full rank
    ((1024, 2048), 0.8, 'eigh', False),
    ((255, 300), 0.8, 'ritz', True),     # forced: tried, may fall back
    ((512, 32768), 1.0, 'ritz', True),
])
def test_when_the_ritz_solver_is_tried(shape, eps, solver, expected):
    assert uses_ritz(shape, eps, solver) is expected


def test_auto_runs_the_ritz_solver_and_eigh_does_not(ritz_calls):
    x = low_rank_wide_activation()
    hosvd(x, eps=0.9, solver='eigh')
    assert ritz_calls == []
    hosvd(x, eps=0.9)
    assert ritz_calls == [(320, 4 * 6 * 5)]  # the channel mode only


@pytest.mark.parametrize('solver,calls', [('auto', 1), ('eigh', 0)])
def test_conv_solver_reaches_the_decomposition(ritz_calls, solver, calls):
    from mmseg_hosvd.ops import ConvGeometry, hosvd_conv2d
    x = low_rank_wide_activation().float()
    weight = torch.randn(4, 320, 3, 3, requires_grad=True)
    geo = ConvGeometry((1, 1), (1, 1, 1, 1), (1, 1), 1)
    hosvd_conv2d(x, weight, None, geo, eps=0.9, solver=solver)
    assert len(ritz_calls) == calls


@pytest.mark.parametrize('bad', [float('nan'), float('inf'), 1e30])
def test_non_finite_input_gets_the_project_error_on_the_ritz_path(bad):
    matrix = matrix_with_spectrum([0.9**i for i in range(300)], 300,
                                  torch.float32)
    matrix[3, 4] = bad
    with pytest.raises(SolverUnsuitable, match='not finite|NaN or Inf'):
        ritz_leading_vectors(matrix, 0.8)
    with pytest.raises(ValueError, match='NaN or Inf'):
        leading_vectors(matrix, 0.8)


@pytest.mark.parametrize('bad,error,match', [
    (1.0, SolverUnsuitable, 'needs eps < 1, got 1.0'),
    (0.0, ValueError, r'eps must be in \(0, 1\], got 0'),
    (1.5, ValueError, r'got 1.5')])
def test_ritz_eps_is_checked(bad, error, match):
    with pytest.raises(error, match=match):
        ritz_leading_vectors(torch.randn(300, 300), bad)


def test_leading_vectors_of_half_precision_input():
    matrix = matrix_with_spectrum([0.8**i for i in range(300)], 300,
                                  torch.float16)
    vectors = leading_vectors(matrix, 0.8)
    assert vectors.dtype == torch.float32
    assert captured_fraction(vectors, matrix.float()) >= 0.8 - 1e-4
