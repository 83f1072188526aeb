"""Compressed Linear layers: exact at eps = 1, the compressed-space weight
gradient below it, what they store, and their errors."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from mmseg_hosvd.ops import (
    DecompositionSettings,
    SharedDecomposition,
    hosvd,
    hosvd_linear,
    quantized_linear,
    subspace_hosvd_linear,
    svd_linear,
    truncated_svd,
    tucker_to_tensor,
)


def hosvd_keep_batch_linear(x, weight, bias, eps):
    """HOSVD with the batch mode kept whole."""
    return hosvd_linear(x, weight, bias,
                        settings=DecompositionSettings(eps, keep_batch=True))


FUNCTIONS = {'hosvd': hosvd_linear, 'svd': svd_linear,
             'hosvd-keep-batch': hosvd_keep_batch_linear}
SHAPES = [(3, 5, 7), (2, 4, 3, 7), (6, 7)]


def linear_case(shape, out_features, bias):
    """A float64 nn.Linear and an input of ``shape`` that needs grad."""
    linear = torch.nn.Linear(shape[-1], out_features, bias=bias).double()
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    return linear, x


def check_matches_linear(linear, x, function, **kwargs):
    """Output and every gradient equal plain nn.Linear's."""
    params = [linear.weight] + ([linear.bias] if linear.bias is not None
                                else [])
    ref = linear(x)
    grad_out = torch.randn_like(ref)
    expected = torch.autograd.grad(ref, [x] + params, grad_out)
    out, stored = function(x, linear.weight, linear.bias, **kwargs)
    assert stored is not None and stored.input_numel == x.numel()
    got = torch.autograd.grad(out, [x] + params, grad_out)
    assert_close(out, ref)
    for grad, want in zip(got, expected, strict=True):
        assert_close(grad, want)


@pytest.mark.parametrize('name', sorted(FUNCTIONS))
@pytest.mark.parametrize('shape', SHAPES, ids=str)
@pytest.mark.parametrize('bias', [True, False])
def test_full_rank_matches_linear(name, shape, bias):
    linear, x = linear_case(shape, 6, bias)
    check_matches_linear(linear, x, FUNCTIONS[name], eps=1.0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=2, max_size=4),
       st.integers(1, 6), st.booleans(), st.sampled_from(sorted(FUNCTIONS)))
def test_random_shapes_match_linear(shape, out_features, bias, name):
    linear, x = linear_case(shape, out_features, bias)
    check_matches_linear(linear, x, FUNCTIONS[name], eps=1.0)


def low_rank_tokens(shape=(4, 12, 10), rank=3):
    """Correlated tokens plus noise: below full rank at eps < 1."""
    parts = [torch.randn(s, rank, dtype=torch.float64) for s in shape]
    core = torch.randn((rank, ) * len(shape), dtype=torch.float64)
    return tucker_to_tensor((core, parts)) + 0.2 * torch.randn(
        shape, dtype=torch.float64)


def exact_grads_of(rebuilt, x, linear, grad_out):
    """Input and weight gradients of nn.Linear on ``rebuilt`` (weight) and
    on ``x`` (input)."""
    (grad_w, ) = torch.autograd.grad(linear(rebuilt), [linear.weight],
                                     grad_out)
    (grad_x, ) = torch.autograd.grad(linear(x), [x], grad_out)
    return grad_x, grad_w


@pytest.mark.parametrize('keep_batch,spatial_eps', [(False, None),
                                                     (True, None),
                                                     (True, 0.95)])
@pytest.mark.parametrize('shape', [(4, 12, 10), (3, 5, 6, 10)], ids=str)
def test_hosvd_weight_grad_is_that_of_the_tucker_reconstruction(
        shape, keep_batch, spatial_eps):
    """The stored form is ``hosvd``'s with the channel mode last (a
    spatial eps applies to the token modes only)."""
    x = low_rank_tokens(shape).requires_grad_()
    linear = torch.nn.Linear(10, 5).double()
    chosen = DecompositionSettings(0.8, keep_batch=keep_batch,
                                   spatial_eps=spatial_eps)
    out, stored = hosvd_linear(x, linear.weight, None, settings=chosen)
    assert stored.ranks[-1] < 10 and stored.numel < x.numel()
    grad_out = torch.randn_like(out)
    got = torch.autograd.grad(out, [x, linear.weight], grad_out)
    form = hosvd(x, settings=chosen, channel_mode=x.ndim - 1)
    assert stored.ranks == tuple(form[0].shape)
    rebuilt = tucker_to_tensor(form)
    assert_close(out, torch.nn.functional.linear(x, linear.weight))
    linear.bias = None
    for grad, want in zip(got, exact_grads_of(rebuilt, x, linear,
                                              grad_out), strict=True):
        assert_close(grad, want)


def test_svd_weight_grad_is_that_of_the_truncated_svd():
    x = low_rank_tokens().requires_grad_()
    linear = torch.nn.Linear(10, 5).double()
    out, stored = svd_linear(x, linear.weight, linear.bias, eps=0.8)
    (k, ) = stored.ranks
    assert k < 4 and stored.numel == 4 * k + k * 12 * 10
    grad_out = torch.randn_like(out)
    got = torch.autograd.grad(out, [x, linear.weight], grad_out)
    u, s, vh = truncated_svd(x.detach().reshape(4, -1), eps=0.8)
    rebuilt = (u * s @ vh).reshape(x.shape)
    for grad, want in zip(got, exact_grads_of(rebuilt, x, linear,
                                              grad_out), strict=True):
        assert_close(grad, want)


def test_hosvd_saves_the_tucker_form_not_the_input():
    x = low_rank_tokens()
    weight = torch.randn(5, 10, dtype=torch.float64, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(
            lambda t: saved.append(t) or t, lambda t: t):
        _, stored = hosvd_linear(x, weight, None, eps=0.8)
    activations = [t for t in saved if t is not weight]
    assert sum(t.numel() for t in activations) == stored.numel
    k0, k1, k2 = stored.ranks
    assert stored.numel == k0 * k1 * k2 + 4 * k0 + 12 * k1 + 10 * k2


@pytest.mark.parametrize('bits', [2, 8])
def test_quantized_output_input_and_bias_gradients_are_exact(bits):
    linear, x = linear_case((3, 5, 7), 6, True)
    ref = linear(x)
    grad_out = torch.randn_like(ref)
    leaves = [x, linear.weight, linear.bias]
    expected = torch.autograd.grad(ref, leaves, grad_out)
    gen = torch.Generator().manual_seed(0)
    out, stored = quantized_linear(x, linear.weight, linear.bias, bits, 16,
                                   gen)
    got = torch.autograd.grad(out, leaves, grad_out)
    assert_close(out, ref)
    assert_close(got[0], expected[0])
    assert_close(got[2], expected[2])
    error = (got[1] - expected[1]).norm() / expected[1].norm()
    assert float(error) < (0.02 if bits == 8 else 0.6)
    # 35 elements per sample: 3 groups of 16 codes, a float32 min and step
    assert stored.numel == 3 * (3 * 16 * bits // 8 + 3 * 4 + 3 * 4) // 4


def test_subspace_at_full_ranks_matches_linear():
    linear, x = linear_case((3, 5, 7), 4, True)
    check_matches_linear(linear, x,
                         lambda *args: subspace_hosvd_linear(
                             *args, ranks=(3, 5, 7))[:2])


def test_shared_input_is_decomposed_and_counted_once():
    x = low_rank_tokens()
    weights = [torch.randn(5, 10, dtype=torch.float64, requires_grad=True)
               for _ in range(3)]
    shared = SharedDecomposition()
    outs = [hosvd_linear(x, w, None, eps=0.8, shared=shared) for w in weights]
    first, *others = [stored for _, stored in outs]
    assert first.numel > 0 and not first.shared
    assert all(s.numel == 0 and s.shared for s in others)
    for (out, _), w in zip(outs, weights, strict=True):
        alone, _ = hosvd_linear(x, w, None, eps=0.8)
        assert_close(torch.autograd.grad(out.sum(), [w])[0],
                     torch.autograd.grad(alone.sum(), [w])[0])


@pytest.mark.parametrize('function', [hosvd_linear, svd_linear,
                                      quantized_linear])
def test_frozen_weight_or_no_grad_runs_plain_linear(function):
    x = torch.randn(2, 3, 4)
    frozen = torch.randn(5, 4)
    out, stored = function(x, frozen, None)
    assert stored is None and out.grad_fn is None
    with torch.no_grad():
        _, stored = function(x, frozen.requires_grad_(), None)
    assert stored is None


@pytest.mark.parametrize('function', [hosvd_linear, svd_linear])
@pytest.mark.parametrize('eps', [0.0, -0.5, 1.5])
def test_eps_out_of_range_is_named(function, eps):
    with pytest.raises(ValueError, match=rf'eps must be in \(0, 1\], got '
                       rf'{eps}'):
        function(torch.randn(2, 3, 4), torch.randn(5, 4, requires_grad=True),
                 None, eps=eps)


@pytest.mark.parametrize('function', [hosvd_linear, svd_linear,
                                      quantized_linear])
@pytest.mark.parametrize('shape', [(4, ), (2, 2, 2, 2, 4)], ids=str)
def test_input_of_another_order_is_named(function, shape):
    with pytest.raises(ValueError, match=r'\(B, C\), \(B, N, C\) or '
                       r'\(B, H, W, C\) tensor, got shape ' +
                       str(shape).replace('(', r'\(').replace(')', r'\)')):
        function(torch.randn(shape), torch.randn(5, 4, requires_grad=True),
                 None)


def test_subspace_ranks_must_match_the_input_order():
    with pytest.raises(ValueError, match=r'ranks needs one entry per mode '
                       r'\(3\), got \(2, 2\)'):
        subspace_hosvd_linear(torch.randn(2, 3, 4),
                              torch.randn(5, 4, requires_grad=True), None,
                              ranks=(2, 2))


@pytest.mark.parametrize('function', [hosvd_linear, svd_linear])
def test_all_zero_input_stores_nothing(function):
    x = torch.zeros(2, 3, 4, requires_grad=True)
    w = torch.randn(5, 4, requires_grad=True)
    out, stored = function(x, w, None, eps=0.8)
    assert stored.numel == 0
    out.sum().backward()
    assert torch.equal(w.grad, torch.zeros_like(w))


@pytest.mark.parametrize('function', [hosvd_linear, svd_linear,
                                      quantized_linear])
def test_bfloat16_autocast_trains(function):
    linear = torch.nn.Linear(4, 6)
    x = torch.randn(2, 5, 4, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out, stored = function(x, linear.weight, linear.bias)
        assert out.dtype == torch.bfloat16
        loss = out.float().pow(2).mean()
    loss.backward()
    assert stored.numel > 0
    for param in (x, linear.weight, linear.bias):
        assert param.grad.dtype == torch.float32
        assert torch.isfinite(param.grad).all()
