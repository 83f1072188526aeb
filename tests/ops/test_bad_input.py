"""Clear errors for bad input; zero activations; bfloat16 autocast."""
import pytest
import torch

from mmseg_hosvd.ops import (
    ConvGeometry,
    gradient_filter_conv2d,
    hosvd_conv2d,
    svd_conv2d,
)

GEO = ConvGeometry.make(1, 1)


def weight(requires_grad=True):
    return torch.randn(6, 4, 3, 3, requires_grad=requires_grad)


@pytest.mark.parametrize('function', [hosvd_conv2d, svd_conv2d])
@pytest.mark.parametrize('eps', [0.0, -1.0, 1.01, 2])
def test_eps_out_of_range(function, eps):
    with pytest.raises(ValueError, match=rf'eps must be in \(0, 1\], got '
                       rf'{eps}'):
        function(torch.randn(2, 4, 5, 5), weight(), None, GEO, eps=eps)


@pytest.mark.parametrize('radius', [0, -2, 1.5, True])
def test_radius_below_one(radius):
    with pytest.raises(ValueError, match=f'radius must be an int >= 1, got '
                       f'{radius}'):
        gradient_filter_conv2d(torch.randn(2, 4, 5, 5), weight(), None, GEO,
                               radius)


@pytest.mark.parametrize('function', [hosvd_conv2d, svd_conv2d,
                                      gradient_filter_conv2d])
@pytest.mark.parametrize('shape', [(4, 5, 5), (2, 4, 5, 5, 1)])
def test_non_4d_input(function, shape):
    with pytest.raises(ValueError, match=r'4-D \(B, C, H, W\).*' +
                       str(shape).replace('(', r'\(').replace(')', r'\)')):
        function(torch.randn(shape), weight(), None, GEO)


@pytest.mark.parametrize('function', [hosvd_conv2d, svd_conv2d])
@pytest.mark.parametrize('bad', [float('nan'), float('inf'), -float('inf')])
def test_non_finite_activation(function, bad):
    x = torch.randn(2, 4, 5, 5)
    x[0, 1, 2, 3] = bad
    with pytest.raises(ValueError, match='NaN or Inf'):
        function(x, weight(), None, GEO, eps=0.9)


@pytest.mark.parametrize('function', [hosvd_conv2d, svd_conv2d])
def test_all_zero_activation_stores_nothing(function):
    x = torch.zeros(2, 4, 5, 5, requires_grad=True)
    w = weight()
    out, stored = function(x, w, None, GEO, eps=0.8)
    assert stored.numel == 0
    out.sum().backward()
    assert torch.equal(w.grad, torch.zeros_like(w))
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_frozen_weight_runs_plain_conv():
    out, stored = hosvd_conv2d(torch.randn(2, 4, 5, 5), weight(False), None,
                               GEO, 0.8)
    assert stored is None and out.shape == (2, 6, 5, 5)


@pytest.mark.parametrize('function', [hosvd_conv2d, svd_conv2d,
                                      gradient_filter_conv2d])
def test_bfloat16_autocast_trains(function):
    conv = torch.nn.Conv2d(4, 6, 3, padding=1)
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out, stored = function(x, conv.weight, conv.bias,
                               ConvGeometry.of(conv))
        assert out.dtype == torch.bfloat16
        loss = out.float().pow(2).mean()
    loss.backward()
    assert stored.numel > 0
    for grad in (x.grad, conv.weight.grad, conv.bias.grad):
        assert grad is not None and torch.isfinite(grad).all()
    assert conv.weight.grad.dtype == torch.float32
    assert x.grad.dtype == torch.float32
