import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from mmseg_hosvd.ops import (
    DecompositionSettings,
    hosvd,
    rank_from_explained_variance,
    truncated_svd,
    tucker_core,
    tucker_to_tensor,
    unfold,
)


def brute_force_rank(singular_values, eps):
    energy = (singular_values.double()**2).tolist()
    total = sum(energy)
    for k in range(1, len(energy) + 1):
        if sum(energy[:k]) / total >= eps:
            return k
    return len(energy)


def low_rank_activation(shape=(6, 12, 9, 7), rank=3, noise=0.05):
    parts = [torch.randn(s, rank, dtype=torch.float64) for s in shape]
    core = torch.randn([rank] * len(shape), dtype=torch.float64)
    return tucker_to_tensor((core, parts)) + noise * torch.randn(
        shape, dtype=torch.float64)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 10.0), min_size=1, max_size=12),
       st.floats(0.01, 0.999))
def test_rank_rule_matches_brute_force(values, eps):
    s = torch.tensor(sorted(values, reverse=True), dtype=torch.float64)
    if float((s**2).sum()) == 0.0:
        assert rank_from_explained_variance(s, eps) == 0
    else:
        assert rank_from_explained_variance(s, eps) == brute_force_rank(
            s, eps)


def test_rank_rule_eps_one_keeps_everything():
    s = torch.tensor([3.0, 1.0, 0.0])
    assert rank_from_explained_variance(s, 1.0) == 3


@pytest.mark.parametrize('eps', [0.5, 0.8, 0.9, 0.99])
def test_hosvd_ranks_are_smallest_reaching_eps(eps):
    x = low_rank_activation()
    core, factors = hosvd(x, eps=eps)
    for mode, factor in enumerate(factors):
        s = torch.linalg.svdvals(unfold(x, mode))
        assert factor.shape[1] == brute_force_rank(s, eps), mode
        assert core.shape[mode] == factor.shape[1]


@pytest.mark.parametrize('eps', [0.5, 0.8, 0.9])
def test_hosvd_factors_explain_at_least_eps(eps):
    x = low_rank_activation()
    _, factors = hosvd(x, eps=eps)
    for mode, factor in enumerate(factors):
        unfolded = unfold(x, mode)
        assert_close(factor.t() @ factor,
                     torch.eye(factor.shape[1], dtype=factor.dtype))
        kept = (factor.t() @ unfolded).pow(2).sum() / unfolded.pow(2).sum()
        assert kept >= eps - 1e-12


def test_hosvd_full_rank_is_exact_and_float32_for_low_precision():
    x = torch.randn(3, 4, 5, 6, dtype=torch.float64)
    core, factors = hosvd(x, eps=1.0)
    assert core.shape == x.shape
    assert_close(tucker_to_tensor((core, factors)), x)
    core16, _ = hosvd(x.to(torch.bfloat16), eps=0.9)
    assert core16.dtype == torch.float32


def test_hosvd_fixed_rank_and_argument_errors():
    x = torch.randn(3, 4, 5, 6)
    core, factors = hosvd(x, rank=(2, 2, 9, 1))
    assert core.shape == (2, 2, 5, 1)
    with pytest.raises(ValueError, match='exactly one of eps and rank'):
        hosvd(x)
    with pytest.raises(ValueError, match='exactly one of eps and rank'):
        hosvd(x, eps=0.5, rank=(1, 1, 1, 1))
    with pytest.raises(ValueError, match='one entry per mode'):
        hosvd(x, rank=(1, 1))


@pytest.mark.parametrize('bad', [0, 0.0, -0.1, 1.5, float('nan'), '0.8'])
def test_eps_out_of_range_is_named(bad):
    with pytest.raises(ValueError, match='eps'):
        hosvd(torch.randn(2, 2, 2, 2), eps=bad)


def test_hosvd_of_zero_tensor_keeps_nothing():
    core, factors = hosvd(torch.zeros(2, 3, 4, 5), eps=0.9)
    assert core.numel() == 0
    assert [f.shape for f in factors] == [(2, 0), (3, 0), (4, 0), (5, 0)]


@pytest.mark.parametrize('bad', [float('nan'), float('inf')])
def test_hosvd_rejects_non_finite(bad):
    x = torch.randn(2, 3, 4, 5)
    x[1, 2, 3, 4] = bad
    with pytest.raises(ValueError, match='NaN or Inf'):
        hosvd(x, eps=0.9)


@pytest.mark.parametrize('shape', [(5, 40), (40, 5), (7, 7)])
def test_truncated_svd_matches_torch(shape):
    matrix = torch.randn(shape, dtype=torch.float64)
    u, s, vh = truncated_svd(matrix, eps=1.0)
    assert_close(u @ torch.diag(s) @ vh, matrix)
    assert_close(s, torch.linalg.svdvals(matrix))
    u, s, vh = truncated_svd(matrix, eps=0.7)
    k = brute_force_rank(torch.linalg.svdvals(matrix), 0.7)
    assert u.shape == (shape[0], k) and vh.shape == (k, shape[1])
    best = torch.linalg.svd(matrix, full_matrices=False)
    approx = best.U[:, :k] @ torch.diag(best.S[:k]) @ best.Vh[:k]
    assert_close(u @ torch.diag(s) @ vh, approx)


def test_truncated_svd_rejects_tensors():
    with pytest.raises(ValueError, match='expects a matrix'):
        truncated_svd(torch.randn(2, 3, 4), eps=0.5)


@pytest.mark.parametrize('dtype', [torch.float64, torch.bfloat16])
def test_a_kept_batch_mode_is_the_identity_and_the_rest_is_truncated(dtype):
    """The batch factor is the identity in the decomposition's dtype, the
    other factors are those of the paper's HOSVD at the same eps, and the
    core holds every image."""
    x = low_rank_activation().to(dtype)
    plain_core, plain = hosvd(x, settings=DecompositionSettings(
        0.7, 'eigh'))
    core, factors = hosvd(x, settings=DecompositionSettings(
        0.7, 'eigh', keep_batch=True))
    assert plain_core.shape[0] < x.shape[0] == core.shape[0]
    assert_close(factors[0], torch.eye(x.shape[0], dtype=factors[1].dtype))
    for got, want in zip(factors[1:], plain[1:], strict=True):
        assert_close(got @ got.T, want @ want.T)
    assert core.shape[1:] == plain_core.shape[1:]
    assert_close(core, tucker_core(x.to(core.dtype), factors))


@pytest.mark.parametrize('shape,channel_mode', [((6, 12, 9, 7), 1),
                                                ((6, 9, 7, 12), 3),
                                                ((6, 9, 12), 2)], ids=str)
def test_spatial_eps_truncates_every_other_mode_at_its_own_threshold(
        shape, channel_mode):
    """The batch and channel modes get the factors of ``eps``, the other
    modes those of ``spatial_eps``, each as the one-threshold HOSVD at
    that threshold gives them."""
    x = low_rank_activation(shape, noise=0.3)
    low, high = (hosvd(x, settings=DecompositionSettings(e, 'eigh'))[1]
                 for e in (0.5, 0.95))
    core, factors = hosvd(x, settings=DecompositionSettings(
        0.5, 'eigh', spatial_eps=0.95), channel_mode=channel_mode)
    for mode, factor in enumerate(factors):
        want = low[mode] if mode in (0, channel_mode) else high[mode]
        assert factor.shape == want.shape, mode
        assert_close(factor @ factor.T, want @ want.T)
    assert any(a.shape != b.shape for a, b in zip(low, high, strict=True))
    assert_close(core, tucker_core(x, factors))


def test_spatial_eps_and_the_channel_mode_are_checked_and_named():
    with pytest.raises(ValueError, match=r'spatial_eps must be in \(0, 1\], '
                       'got 1.5'):
        DecompositionSettings(0.8, spatial_eps=1.5)
    with pytest.raises(ValueError, match="spatial_eps must be a number in "
                       r"\(0, 1\], got '0.9'"):
        DecompositionSettings(0.8, spatial_eps='0.9')
    with pytest.raises(ValueError, match='channel_mode must be a mode after '
                       'the first of a tensor of order 4, got 4'):
        hosvd(low_rank_activation(), eps=0.8, channel_mode=4)


def test_keep_batch_is_checked_and_named():
    with pytest.raises(ValueError, match="keep_batch must be True or False, "
                       "got 'yes'"):
        DecompositionSettings(0.8, keep_batch='yes')
