"""Behaviour below full rank: ranks, stored sizes and gradient error."""
from itertools import pairwise

import pytest
import torch
from torch.testing import assert_close

from mmseg_hosvd.ops import (
    ConvGeometry,
    DecompositionSettings,
    conv2d_weight_grad,
    hosvd,
    hosvd_conv2d,
    hosvd_weight_grad,
    svd_conv2d,
    truncated_svd,
    tucker_to_tensor,
)

from .conv_cases import CASES, case_id, make_conv


def structured_activation(shape=(8, 16, 12, 12)):
    """Smooth, correlated maps like real activations, plus a little noise."""
    b, c, h, w = shape
    rank = 4
    parts = [torch.randn(s, rank, dtype=torch.float64) for s in shape]
    parts[2] = torch.cumsum(parts[2], 0)
    parts[3] = torch.cumsum(parts[3], 0)
    core = torch.randn(rank, rank, rank, rank, dtype=torch.float64)
    return (tucker_to_tensor((core, parts)) +
            0.3 * torch.randn(shape, dtype=torch.float64)).relu()


def weight_grad(function, x, weight, geo, grad_out, **kwargs):
    w = weight.detach().clone().requires_grad_()
    out, stored = function(x, w, None, geo, **kwargs)
    (grad, ) = torch.autograd.grad(out, [w], grad_out)
    return grad, stored


@pytest.mark.parametrize('function', [hosvd_conv2d, svd_conv2d],
                         ids=['hosvd', 'svd'])
def test_weight_grad_error_falls_as_eps_rises(function):
    x = structured_activation()
    weight = torch.randn(10, 16, 3, 3, dtype=torch.float64)
    geo = ConvGeometry.make(1, 1, 1, 1)
    grad_out = torch.randn(8, 10, 12, 12, dtype=torch.float64)
    exact, _ = weight_grad(function, x, weight, geo, grad_out, eps=1.0)
    errors, sizes = [], []
    for eps in (0.5, 0.8, 0.9, 0.99, 0.9999):
        approx, stored = weight_grad(function, x, weight, geo, grad_out,
                                     eps=eps)
        errors.append(float((approx - exact).norm() / exact.norm()))
        sizes.append(stored.numel)
    assert all(a >= b for a, b in pairwise(errors)), errors
    assert all(a <= b for a, b in pairwise(sizes)), sizes
    assert errors[0] > 10 * errors[-1]


def test_hosvd_stored_size_matches_formula():
    x = structured_activation()
    weight = torch.randn(10, 16, 3, 3, dtype=torch.float64,
                         requires_grad=True)
    _, stored = hosvd_conv2d(x, weight, None, ConvGeometry.make(1, 1), 0.8)
    k0, k1, k2, k3 = stored.ranks
    b, c, h, w = x.shape
    factors = b * k0 + c * k1 + h * k2 + w * k3
    assert stored.numel == k0 * k1 * k2 * k3 + factors
    assert stored.bytes == 4 * stored.numel
    assert stored.input_numel == x.numel()
    core, _ = hosvd(x, eps=0.8)
    assert stored.ranks == tuple(core.shape)
    assert stored.numel < x.numel()


def test_svd_stored_size_matches_formula():
    x = structured_activation()
    weight = torch.randn(10, 16, 3, 3, dtype=torch.float64,
                         requires_grad=True)
    _, stored = svd_conv2d(x, weight, None, ConvGeometry.make(1, 1), 0.8)
    (k, ) = stored.ranks
    b = x.shape[0]
    assert stored.numel == b * k + k * x[0].numel()
    u, _, _ = truncated_svd(x.reshape(b, -1), eps=0.8)
    assert u.shape[1] == k


def test_saved_tensors_are_the_compressed_form():
    """What autograd keeps is the core and factors, never the input."""
    x = structured_activation()
    weight = torch.randn(10, 16, 3, 3, dtype=torch.float64,
                         requires_grad=True)
    saved = []

    def pack(tensor):
        saved.append(tensor)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        _, stored = hosvd_conv2d(x, weight, None, ConvGeometry.make(1, 1),
                                 0.8)
    activations = [t for t in saved if t is not weight]
    assert sum(t.numel() for t in activations) == stored.numel
    assert all(t.untyped_storage().nbytes() == t.numel() * t.element_size()
               for t in activations)


@pytest.mark.parametrize('case', CASES, ids=[case_id(c) for c in CASES])
def test_hosvd_weight_grad_is_that_of_the_tucker_reconstruction(case):
    """Below full rank the weight gradient is the exact one of the input
    that the stored Tucker form reconstructs (pointwise cases included)."""
    conv, x = make_conv(case)
    geo = ConvGeometry.of(conv)
    core, factors = hosvd(x.detach(), eps=0.7)
    assert core.shape != x.shape
    grad_output = torch.randn_like(conv(x))
    expected = conv2d_weight_grad(tucker_to_tensor((core, factors)),
                                  conv.weight.shape, grad_output, geo)
    assert_close(hosvd_weight_grad(core, factors, grad_output,
                                   conv.weight.shape, geo), expected)


@pytest.mark.parametrize('case', CASES, ids=[case_id(c) for c in CASES])
def test_a_spatial_eps_weight_grad_is_that_of_its_tucker_reconstruction(
        case):
    """With the spatial modes at their own threshold, the convolution
    stores the form that ``hosvd`` gives with channel mode 1, and its
    weight gradient is the exact one of that form's input."""
    conv, x = make_conv(case)
    chosen = DecompositionSettings(0.6, keep_batch=True, spatial_eps=0.95)
    out, stored = hosvd_conv2d(x, conv.weight, conv.bias,
                               ConvGeometry.of(conv), settings=chosen)
    core, factors = hosvd(x.detach(), settings=chosen, channel_mode=1)
    assert stored.ranks == tuple(core.shape)
    grad_output = torch.randn_like(out)
    (grad, ) = torch.autograd.grad(out, [conv.weight], grad_output)
    assert_close(grad, conv2d_weight_grad(tucker_to_tensor((core, factors)),
                                          conv.weight.shape, grad_output,
                                          ConvGeometry.of(conv)))


def test_pointwise_weight_grad_of_a_bfloat16_gradient():
    """Under autocast the output gradient may be bfloat16 and the Tucker
    form float32: the gradient is formed in the form's dtype."""
    conv, x = make_conv((4, 6, 1, 1, 0, 1, 1, True, 7, 5), torch.float32)
    geo = ConvGeometry.of(conv)
    core, factors = hosvd(x.detach(), eps=0.9)
    grad_output = torch.randn(3, 6, 7, 5).bfloat16()
    grad = hosvd_weight_grad(core, factors, grad_output, conv.weight.shape,
                             geo)
    assert grad.dtype == torch.float32
    expected = conv2d_weight_grad(tucker_to_tensor((core, factors)),
                                  conv.weight.shape, grad_output.float(), geo)
    assert_close(grad, expected, rtol=1e-5, atol=1e-5)
