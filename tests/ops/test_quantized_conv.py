"""Quantized activations: exact output and input gradient, an unbiased
weight gradient whose error falls with the bits, and the stored size."""
import pytest
import torch
from torch.testing import assert_close

from mmseg_hosvd.models import Conv2dQuantized
from mmseg_hosvd.ops import (
    ConvGeometry,
    conv2d_weight_grad,
    dequantize,
    quantize,
    quantized_conv2d,
)

from .conv_cases import CASES, case_id, make_conv, reference_grads


def relative(a, b):
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize('bits', [2, 4, 8])
def test_codes_round_trip_within_one_step(bits):
    x = torch.randn(3, 5, 7, 9) * torch.linspace(0.1, 10, 9)
    gen = torch.Generator().manual_seed(0)
    packed, low, step = quantize(x, bits, 64, gen)
    assert packed.dtype == torch.uint8
    # 315 elements per sample -> 5 groups of 64 (padded), bits/8 bytes each
    assert packed.shape == (3, 5 * 64 * bits // 8)
    assert low.shape == step.shape == (3, 5)
    back = dequantize(packed, low, step, bits, x.shape, x.dtype)
    error = (back - x).abs().reshape(3, -1)
    steps = step.repeat_interleave(64, 1)[:, :315]
    assert bool((error <= steps * (1 + 1e-5) + 1e-6).all())


def test_stochastic_rounding_is_unbiased_and_uses_its_own_generator():
    x = torch.randn(2, 3, 8, 8)
    gen = torch.Generator().manual_seed(0)
    state = torch.get_rng_state()
    draws = torch.stack([
        dequantize(*quantize(x, 2, 16, gen), 2, x.shape, x.dtype)
        for _ in range(400)
    ])
    assert torch.equal(torch.get_rng_state(), state)
    single = relative(draws[0], x)
    mean = relative(draws.mean(0), x)
    assert mean < single / 10


@pytest.mark.parametrize('case', CASES, ids=case_id)
@pytest.mark.parametrize('bits', [2, 8])
def test_output_and_input_gradient_are_exact(case, bits):
    conv, x = make_conv(case)
    expected_out, grad_out, expected = reference_grads(conv, x)
    x2 = x.detach().clone().requires_grad_()
    gen = torch.Generator().manual_seed(0)
    out, stored = quantized_conv2d(x2, conv.weight, conv.bias,
                                   ConvGeometry.of(conv), bits, 16, gen)
    params = [conv.weight] + ([conv.bias] if conv.bias is not None else [])
    grads = torch.autograd.grad(out, [x2] + params, grad_out)
    assert_close(out, expected_out)
    assert_close(grads[0], expected[0])
    if conv.bias is not None:
        assert_close(grads[2], expected[2])
    # the weight gradient is the exact one of the dequantized input
    gen = torch.Generator().manual_seed(0)
    stored_x = dequantize(*quantize(x.detach(), bits, 16, gen), bits,
                          x.shape, x.dtype)
    assert_close(grads[1], conv2d_weight_grad(
        stored_x, conv.weight.shape, grad_out, ConvGeometry.of(conv)))


def test_weight_gradient_error_falls_with_bits_and_averages_out():
    conv, x = make_conv(CASES[0], dtype=torch.float32)
    _, grad_out, expected = reference_grads(conv, x)
    geo = ConvGeometry.of(conv)
    gen = torch.Generator().manual_seed(0)
    errors = {}
    for bits in (2, 4, 8):
        out, _ = quantized_conv2d(x, conv.weight, conv.bias, geo, bits, 32,
                                  gen)
        (got, ) = torch.autograd.grad(out, [conv.weight], grad_out)
        errors[bits] = relative(got, expected[1])
    assert errors[8] < 0.01 and errors[8] < errors[4] < errors[2]
    draws = []
    for _ in range(200):
        out, _ = quantized_conv2d(x, conv.weight, conv.bias, geo, 2, 32, gen)
        draws.append(torch.autograd.grad(out, [conv.weight], grad_out)[0])
    assert relative(torch.stack(draws).mean(0), expected[1]) < errors[2] / 5


@pytest.mark.parametrize('bits', [2, 8])
def test_stored_size_is_codes_plus_group_minimum_and_step(bits):
    conv = Conv2dQuantized(8, 4, 3, padding=1, bits=bits, group_size=256)
    x = torch.randn(2, 8, 16, 16)
    conv(x).sum().backward()
    groups = 2 * 8  # 2048 elements per sample, 8 groups of 256
    expected_bytes = 2 * 2048 * bits // 8 + 2 * groups * 4
    assert conv.last_stored.bytes == expected_bytes
    assert conv.last_stored.input_numel == x.numel()


@pytest.mark.parametrize('kwargs,match', [
    (dict(bits=3), r'bits must be one of \(2, 4, 8\), got 3'),
    (dict(group_size=6), 'group_size must be a positive multiple of 4, '
     'got 6'),
    (dict(seed=-1), 'seed must be an int >= 0, got -1'),
])
def test_bad_settings_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Conv2dQuantized(4, 4, 3, **kwargs)
