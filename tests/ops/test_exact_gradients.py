"""At eps = 1 (full rank) HOSVD and SVD convolutions equal nn.Conv2d."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from mmseg_hosvd.ops import (
    ConvGeometry,
    DecompositionSettings,
    conv_geometry,
    hosvd_conv2d,
    svd_conv2d,
)

from .conv_cases import CASES, case_id, make_conv, reference_grads


def hosvd_keep_batch_conv2d(x, weight, bias, geo, eps):
    """HOSVD with the batch mode kept whole."""
    return hosvd_conv2d(x, weight, bias, geo,
                        settings=DecompositionSettings(eps, keep_batch=True))


FUNCTIONS = {'hosvd': hosvd_conv2d, 'svd': svd_conv2d,
             'hosvd-keep-batch': hosvd_keep_batch_conv2d}


def check_exact(conv, x, function):
    expected_out, grad_out, expected = reference_grads(conv, x)
    x2 = x.detach().clone().requires_grad_()
    out, stored = function(x2, conv.weight, conv.bias, ConvGeometry.of(conv),
                           eps=1.0)
    assert stored is not None
    params = [conv.weight] + ([conv.bias] if conv.bias is not None else [])
    grads = torch.autograd.grad(out, [x2] + params, grad_out)
    assert_close(out, expected_out)
    for got, want in zip(grads, expected, strict=True):
        assert_close(got, want)


@pytest.mark.parametrize('name', sorted(FUNCTIONS))
@pytest.mark.parametrize('case', CASES, ids=case_id)
def test_full_rank_matches_conv2d(case, name):
    conv, x = make_conv(case)
    check_exact(conv, x, FUNCTIONS[name])


@st.composite
def conv_settings(draw):
    groups = draw(st.sampled_from([1, 2, 3]))
    cin = groups * draw(st.integers(1, 3))
    cout = groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = tuple(draw(st.integers(0, 3)) for _ in range(4))
    h = draw(st.integers(dh * (kh - 1) + 1, 12))
    w = draw(st.integers(dw * (kw - 1) + 1, 12))
    batch = draw(st.integers(1, 4))
    bias = draw(st.booleans())
    return (cin, cout, (kh, kw), (sh, sw), padding, (dh, dw), groups, bias,
            batch, h, w)


@settings(max_examples=60, deadline=None)
@given(conv_settings(), st.sampled_from(sorted(FUNCTIONS)), st.booleans(),
       st.sampled_from([torch.contiguous_format, torch.channels_last]))
def test_random_geometries_match_padded_conv2d(setting, name, sliced,
                                               layout):
    """Per-side padding: the reference pads explicitly, then convolves;
    ``sliced`` runs the forward and the input gradient one image at a time
    (as for large activations); ``layout`` is the input's memory format
    (a convolution on transformer tokens gets a channels-last one)."""
    cin, cout, k, s, pad, d, g, has_bias, batch, h, w = setting
    weight = torch.randn(cout, cin // g, *k, dtype=torch.float64,
                         requires_grad=True)
    bias = torch.randn(cout, dtype=torch.float64,
                       requires_grad=True) if has_bias else None
    x = torch.randn(batch, cin, h, w, dtype=torch.float64).contiguous(
        memory_format=layout).requires_grad_()
    top, bottom, left, right = pad
    ref = torch.nn.functional.conv2d(
        torch.nn.functional.pad(x, (left, right, top, bottom)), weight, bias,
        s, 0, d, g)
    grad_out = torch.randn_like(ref)
    leaves = [x, weight] + ([bias] if has_bias else [])
    expected = torch.autograd.grad(ref, leaves, grad_out)
    with pytest.MonkeyPatch.context() as patch:
        if sliced:
            patch.setattr(conv_geometry, 'SLICE_BYTES', 1)
        out, _ = FUNCTIONS[name](x, weight, bias,
                                 ConvGeometry.make(s, pad, d, g), eps=1.0)
        got = torch.autograd.grad(out, leaves, grad_out)
    assert_close(out, ref)
    for grad, want in zip(got, expected, strict=True):
        assert_close(grad, want)


@pytest.mark.parametrize('sliced', [False, True])
@pytest.mark.parametrize('layout',
                         [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize('name', sorted(FUNCTIONS))
def test_pointwise_input_gradient_in_both_layouts(name, layout, sliced):
    """1 x 1, stride 1, unpadded: the input gradient is a matrix product
    over channels, in the gradient's own memory format."""
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(5, 12, 1, 1, generator=gen, dtype=torch.float64,
                         requires_grad=True)
    x = torch.randn(3, 12, 6, 7, generator=gen, dtype=torch.float64
                    ).contiguous(memory_format=layout).requires_grad_()
    ref = torch.nn.functional.conv2d(x, weight)
    grad_out = torch.randn(ref.shape, generator=gen, dtype=torch.float64
                           ).contiguous(memory_format=layout)
    expected = torch.autograd.grad(ref, [x, weight], grad_out)
    with pytest.MonkeyPatch.context() as patch:
        if sliced:
            patch.setattr(conv_geometry, 'SLICE_BYTES', 1)
        out, _ = FUNCTIONS[name](x, weight, None, ConvGeometry.make(),
                                 eps=1.0)
        got = torch.autograd.grad(out, [x, weight], grad_out)
    assert_close(out, ref)
    for grad, want in zip(got, expected, strict=True):
        assert_close(grad, want)
