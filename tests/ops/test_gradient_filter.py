"""Gradient Filter against a straightforward loop reference."""
import pytest
import torch
from torch.testing import assert_close

from mmseg_hosvd.ops import ConvGeometry, gradient_filter_conv2d


def loop_reference(x, weight, grad_out, stride, radius):
    """Patch-by-patch Gradient Filter gradients (module docstring's rules)."""
    b, c, h, w = x.shape
    cout, cin_g, _, _ = weight.shape
    groups = c // cin_g
    out_h, out_w = grad_out.shape[2:]
    rows = -(-out_h // radius)
    cols = -(-out_w // radius)
    grad_w = torch.zeros_like(weight)
    grad_x = torch.zeros_like(x)
    for p in range(rows):
        for q in range(cols):
            o_r = slice(p * radius, min(p * radius + radius, out_h))
            o_c = slice(q * radius, min(q * radius + radius, out_w))
            i_r = slice(p * radius * stride[0],
                        h if p == rows - 1 else (p + 1) * radius * stride[0])
            i_c = slice(q * radius * stride[1],
                        w if q == cols - 1 else (q + 1) * radius * stride[1])
            g_sum = grad_out[:, :, o_r, o_c].sum((2, 3))  # (B, C')
            x_region = x[:, :, i_r, i_c]
            n_in = x_region.shape[2] * x_region.shape[3]
            if n_in == 0:  # output patch over padding only
                continue
            x_mean = x_region.mean((2, 3))  # (B, C)
            for o in range(cout):
                g = o // (cout // groups)
                for ci in range(cin_g):
                    cg = g * cin_g + ci
                    grad_w[o, ci] += (g_sum[:, o] * x_mean[:, cg]).sum()
                    grad_x[:, cg, i_r, i_c] += (
                        g_sum[:, o] * weight[o, ci].sum() / n_in)[:, None,
                                                                  None]
    return grad_x, grad_w


@pytest.mark.parametrize('radius', [1, 2, 4])
@pytest.mark.parametrize('setting', [
    (4, 6, 3, 1, 1, 1, 13, 11),
    (4, 6, 3, 2, 1, 1, 13, 10),
    (6, 6, 3, 1, 2, 3, 9, 14),
    (6, 4, 1, 1, 0, 2, 7, 9),
],
                         ids=['plain', 'stride2', 'grouped', 'pointwise'])
def test_matches_loop_reference(setting, radius):
    cin, cout, k, s, p, groups, h, w = setting
    x = torch.randn(2, cin, h, w, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(cout, cin // groups, k, k, dtype=torch.float64,
                         requires_grad=True)
    bias = torch.randn(cout, dtype=torch.float64, requires_grad=True)
    geo = ConvGeometry.make(s, p, 1, groups)
    out, stored = gradient_filter_conv2d(x, weight, bias, geo, radius)
    ref = torch.nn.functional.conv2d(x, weight, bias, s, p, 1, groups)
    assert_close(out, ref)
    grad_out = torch.randn_like(out)
    grad_x, grad_w, grad_b = torch.autograd.grad(out, [x, weight, bias],
                                                 grad_out)
    want_x, want_w = loop_reference(x.detach(), weight.detach(), grad_out,
                                    (s, s), radius)
    assert_close(grad_x, want_x)
    assert_close(grad_w, want_w)
    assert_close(grad_b, grad_out.sum((0, 2, 3)))
    patches = -(-out.shape[2] // radius) * -(-out.shape[3] // radius)
    assert stored.numel == 2 * cin * patches


def test_radius_one_pointwise_is_exact():
    conv = torch.nn.Conv2d(5, 3, 1).double()
    x = torch.randn(2, 5, 6, 7, dtype=torch.float64, requires_grad=True)
    ref = conv(x)
    grad_out = torch.randn_like(ref)
    want = torch.autograd.grad(ref, [x, conv.weight], grad_out)
    out, _ = gradient_filter_conv2d(x, conv.weight, conv.bias,
                                    ConvGeometry.of(conv), 1)
    for got, exp in zip(torch.autograd.grad(out, [x, conv.weight], grad_out),
                        want, strict=True):
        assert_close(got, exp)


def test_stores_about_one_over_r_squared():
    x = torch.randn(2, 8, 32, 32, requires_grad=True)
    weight = torch.randn(8, 8, 3, 3, requires_grad=True)
    _, stored = gradient_filter_conv2d(x, weight, None,
                                       ConvGeometry.make(1, 1), 4)
    assert stored.numel * 16 == x.numel()
