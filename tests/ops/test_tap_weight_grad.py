"""The tap-by-tap weight gradient equals nn.Conv2d's, over every geometry,
and holds a small transient where PyTorch's CPU kernel holds a large one."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from mmseg_hosvd.ops import ConvGeometry, conv2d_weight_grad_by_taps
from mmseg_hosvd.utils.step_memory import transient_peak_bytes

from .conv_cases import CASES, case_id, make_conv, reference_grads

TIGHT = dict(rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('layout', [torch.contiguous_format,
                                    torch.channels_last])
@pytest.mark.parametrize('case', CASES, ids=case_id)
def test_equals_nn_conv2d_weight_gradient(case, layout):
    conv, x = make_conv(case)
    _, grad_out, grads = reference_grads(conv, x)
    geo = ConvGeometry.of(conv)
    got = conv2d_weight_grad_by_taps(
        x.detach().contiguous(memory_format=layout), conv.weight.shape,
        grad_out, geo)
    assert_close(got, grads[1], **TIGHT)


def test_adds_to_out_and_returns_it():
    conv, x = make_conv(CASES[3])
    _, grad_out, grads = reference_grads(conv, x)
    geo = ConvGeometry.of(conv)
    out = torch.ones_like(conv.weight)
    halves = [conv2d_weight_grad_by_taps(x[rows].detach(), conv.weight.shape,
                                         grad_out[rows], geo, out)
              for rows in (slice(0, 1), slice(1, None))]
    assert all(h is out for h in halves)
    assert_close(out, grads[1] + 1, **TIGHT)


@st.composite
def geometries(draw):
    groups = draw(st.sampled_from([1, 2, 3]))
    cin = groups * draw(st.integers(1, 3))
    if draw(st.booleans()):  # depthwise
        groups = cin
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    # padding up to past the input: taps that read only zeros
    padding = tuple(draw(st.integers(0, 12)) for _ in range(4))
    top, bottom, left, right = padding
    # the padded input holds the dilated kernel at least once
    low_h = max(1, dh * (kh - 1) + 1 - top - bottom)
    low_w = max(1, dw * (kw - 1) + 1 - left - right)
    h = draw(st.integers(low_h, max(low_h, 9)))
    w = draw(st.integers(low_w, max(low_w, 9)))
    return dict(cin=cin, cout=groups * draw(st.integers(1, 2)),
                kernel=(kh, kw), stride=(draw(st.integers(1, 3)),
                                         draw(st.integers(1, 3))),
                padding=padding, dilation=(dh, dw), groups=groups,
                batch=draw(st.integers(1, 3)), h=h, w=w)


@settings(max_examples=150, deadline=None)
@given(geometries())
def test_random_geometries_equal_the_padded_convolution(s):
    weight = torch.randn(s['cout'], s['cin'] // s['groups'], *s['kernel'],
                         dtype=torch.float64, requires_grad=True)
    x = torch.randn(s['batch'], s['cin'], s['h'], s['w'],
                    dtype=torch.float64)
    top, bottom, left, right = s['padding']
    out = F.conv2d(F.pad(x, (left, right, top, bottom)), weight, None,
                   s['stride'], 0, s['dilation'], s['groups'])
    grad_out = torch.randn_like(out)
    expected = torch.autograd.grad(out, weight, grad_out)[0]
    geo = ConvGeometry.make(s['stride'], s['padding'], s['dilation'],
                            s['groups'])
    got = conv2d_weight_grad_by_taps(x, weight.shape, grad_out, geo)
    assert_close(got, expected, **TIGHT)


def test_dilated_branch_holds_a_slice_not_the_kernels_workspace():
    # one sample of an ASPP branch at a 128 x 128 crop, output stride 8:
    # PyTorch's CPU kernel held 18 MB for it, as for eight samples
    x = torch.randn(1, 512, 16, 16)
    grad_out = torch.randn(1, 128, 16, 16)
    geo = ConvGeometry.make(1, 12, 12)
    shape = (128, 512, 3, 3)
    used = transient_peak_bytes(
        lambda: conv2d_weight_grad_by_taps(x, shape, grad_out, geo))
    weight_bytes = 4 * 128 * 512 * 9
    sample_bytes = x.numel() * x.element_size()
    # the gradient itself, and one tap's copies of the input and the
    # output gradient
    assert used < weight_bytes + 2 * sample_bytes
