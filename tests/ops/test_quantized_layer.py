"""The quantized layers' weight gradient, formed a batch slice at a time,
is the one of the fully dequantized input (the same codes); the output, the
input and the bias gradients stay exact."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from mmseg_hosvd.ops import (
    ConvGeometry,
    conv2d_weight_grad,
    dequantize,
    linear_weight_grad,
    quantize,
    quantized_conv2d,
    quantized_linear,
)
from mmseg_hosvd.ops import quantized_layer as layer_module

from .conv_cases import CASES, case_id, make_conv, reference_grads

#: Tight: the slices' sums differ from the whole one in rounding only.
TIGHT = dict(rtol=1e-12, atol=1e-12)


def dequantized(x, bits, group_size, seed):
    """The input that the layer's codes, drawn with ``seed``, stand for."""
    gen = torch.Generator().manual_seed(seed)
    return dequantize(*quantize(x.detach(), bits, group_size, gen), bits,
                      x.shape, x.dtype)


@pytest.fixture
def slices(monkeypatch):
    """The batch sizes of the slices the weight gradient dequantizes."""
    sizes = []
    real = layer_module.dequantize

    def recording(packed, low, step, bits, shape, dtype):
        sizes.append(shape[0])
        return real(packed, low, step, bits, shape, dtype)

    monkeypatch.setattr(layer_module, 'dequantize', recording)
    return sizes


@pytest.mark.parametrize('case', CASES, ids=case_id)
@pytest.mark.parametrize('bits', [2, 8])
def test_sliced_conv_weight_gradient_is_the_dequantized_inputs(
        case, bits, monkeypatch, slices):
    monkeypatch.setattr(layer_module, 'WEIGHT_GRAD_SLICE_BYTES', 1)
    conv, x = make_conv(case)
    expected_out, grad_out, expected = reference_grads(conv, x)
    x2 = x.detach().clone().requires_grad_()
    geo = ConvGeometry.of(conv)
    gen = torch.Generator().manual_seed(3)
    out, _ = quantized_conv2d(x2, conv.weight, conv.bias, geo, bits, 16, gen)
    params = [conv.weight] + ([conv.bias] if conv.bias is not None else [])
    grads = torch.autograd.grad(out, [x2] + params, grad_out)
    assert slices == [1, 1, 1]  # one sample at a time
    assert_close(out, expected_out)
    assert_close(grads[0], expected[0])
    if conv.bias is not None:
        assert_close(grads[2], expected[2])
    want = conv2d_weight_grad(dequantized(x, bits, 16, 3), conv.weight.shape,
                              grad_out, geo)
    assert_close(grads[1], want, **TIGHT)


@pytest.mark.parametrize('shape', [(5, 6, 7), (4, 3, 2, 7), (9, 7)], ids=str)
@pytest.mark.parametrize('bias', [True, False])
@pytest.mark.parametrize('bits', [2, 8])
def test_sliced_linear_weight_gradient_is_the_dequantized_inputs(
        shape, bias, bits, monkeypatch, slices):
    sample_bytes = 8 * torch.Size(shape[1:]).numel()
    # two samples a slice: the last slice holds what is left
    monkeypatch.setattr(layer_module, 'WEIGHT_GRAD_SLICE_BYTES',
                        2 * sample_bytes)
    linear = torch.nn.Linear(shape[-1], 6, bias=bias).double()
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    ref = linear(x)
    grad_out = torch.randn_like(ref)
    params = [linear.weight] + ([linear.bias] if bias else [])
    expected = torch.autograd.grad(ref, [x] + params, grad_out)
    gen = torch.Generator().manual_seed(5)
    out, _ = quantized_linear(x, linear.weight, linear.bias, bits, 16, gen)
    got = torch.autograd.grad(out, [x] + params, grad_out)
    assert slices == [2] * (shape[0] // 2) + [1] * (shape[0] % 2)
    assert_close(out, ref)
    assert_close(got[0], expected[0])
    if bias:
        assert_close(got[2], expected[2])
    want = linear_weight_grad(dequantized(x, bits, 16, 5), grad_out)
    assert_close(got[1], want, **TIGHT)


def test_float32_slices_agree_with_the_whole_within_rounding(monkeypatch):
    conv, x = make_conv(CASES[3], dtype=torch.float32)
    x = torch.randn(6, *x.shape[1:])
    geo = ConvGeometry.of(conv)
    grad_out = torch.randn_like(conv(x))
    got = {}
    for name, limit in (('sliced', 1), ('whole', 2**40)):
        monkeypatch.setattr(layer_module, 'WEIGHT_GRAD_SLICE_BYTES', limit)
        gen = torch.Generator().manual_seed(0)
        out, _ = quantized_conv2d(x, conv.weight, None, geo, 4, 32, gen)
        (got[name], ) = torch.autograd.grad(out, [conv.weight], grad_out)
    assert_close(got['sliced'], got['whole'])


def test_small_samples_are_grouped_into_one_slice(slices):
    weight = torch.randn(4, 16, requires_grad=True)
    out, _ = quantized_linear(torch.randn(64, 16), weight, None, 8, 16)
    out.sum().backward()
    assert slices == [64]


@st.composite
def sliced_conv_settings(draw):
    groups = draw(st.sampled_from([1, 2, 3]))
    cin = groups * draw(st.integers(1, 3))
    depthwise = draw(st.booleans())
    if depthwise:
        groups = cin
    cout = groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = tuple(draw(st.integers(0, 3)) for _ in range(4))
    h = draw(st.integers(dh * (kh - 1) + 1, 10))
    w = draw(st.integers(dw * (kw - 1) + 1, 10))
    batch = draw(st.integers(1, 5))
    per_slice = draw(st.integers(1, 3))
    return dict(cin=cin, cout=cout, kernel=(kh, kw), stride=(sh, sw),
                padding=padding, dilation=(dh, dw), groups=groups,
                bias=draw(st.booleans()), batch=batch, h=h, w=w,
                per_slice=per_slice, bits=draw(st.sampled_from([2, 4, 8])),
                group_size=draw(st.sampled_from([4, 16, 64])))


@settings(max_examples=60, deadline=None)
@given(sliced_conv_settings())
def test_random_geometries_and_slices_match_the_whole(setting):
    s = setting
    weight = torch.randn(s['cout'], s['cin'] // s['groups'], *s['kernel'],
                         dtype=torch.float64, requires_grad=True)
    bias = torch.randn(s['cout'], dtype=torch.float64,
                       requires_grad=True) if s['bias'] else None
    x = torch.randn(s['batch'], s['cin'], s['h'], s['w'],
                    dtype=torch.float64, requires_grad=True)
    top, bottom, left, right = s['padding']
    ref = F.conv2d(F.pad(x, (left, right, top, bottom)), weight, bias,
                   s['stride'], 0, s['dilation'], s['groups'])
    grad_out = torch.randn_like(ref)
    leaves = [x, weight] + ([bias] if bias is not None else [])
    expected = torch.autograd.grad(ref, leaves, grad_out)
    geo = ConvGeometry.make(s['stride'], s['padding'], s['dilation'],
                            s['groups'])
    sample_bytes = 8 * x[0].numel()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(layer_module, 'WEIGHT_GRAD_SLICE_BYTES',
                      s['per_slice'] * sample_bytes)
        gen = torch.Generator().manual_seed(1)
        out, _ = quantized_conv2d(x, weight, bias, geo, s['bits'],
                                  s['group_size'], gen)
        got = torch.autograd.grad(out, leaves, grad_out)
    assert_close(out, ref)
    assert_close(got[0], expected[0])
    if bias is not None:
        assert_close(got[2], expected[2])
    whole = dequantized(x, s['bits'], s['group_size'], 1)
    assert_close(got[1], conv2d_weight_grad(whole, weight.shape, grad_out,
                                            geo), **TIGHT)
