"""LayerNorm and GELU that keep codes: exact outputs, gradients from the
dequantized input."""
import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from mmseg_hosvd.ops.quantized_activations import (
    quantized_gelu,
    quantized_layer_norm,
)
from mmseg_hosvd.utils import SavedTensorMeter

SHAPES = [(2, 10, 64), (2, 4, 6, 96), (3, 256)]


def on_grid(shape, dtype=torch.float64):
    """Integers 0..255 with both ends in every 256-element group: 8-bit
    codes hold them exactly, so the backward must equal autograd's."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, shape, generator=gen).to(dtype)
    flat = x.view(shape[0], -1)
    flat[:, ::256] = 0
    flat[:, 1::256] = 255
    return x


def reference_and_quantized(fn, reference, x, params=()):
    """Outputs and gradients of ``reference`` and ``fn`` for one upstream
    gradient."""
    results = []
    for op in (reference, fn):
        inputs = [x.clone().requires_grad_()] + [
            p.clone().requires_grad_() for p in params
        ]
        out = op(*inputs)
        grad = torch.randn(out.shape, dtype=out.dtype,
                           generator=torch.Generator().manual_seed(1))
        out.backward(grad)
        results.append((out.detach(), [t.grad for t in inputs]))
    return results


def affine(width, dtype=torch.float64):
    gen = torch.Generator().manual_seed(2)
    return (torch.randn(width, generator=gen, dtype=dtype),
            torch.randn(width, generator=gen, dtype=dtype))


@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('approximate', ['none', 'tanh'])
def test_gelu_equals_autograd_when_the_codes_are_exact(shape, approximate):
    (ref_out, ref_grads), (out, grads) = reference_and_quantized(
        lambda t: quantized_gelu(t / 32, approximate),
        lambda t: F.gelu(t / 32, approximate=approximate), on_grid(shape))
    assert torch.equal(out, ref_out)
    assert_close(grads[0], ref_grads[0])


@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('with_affine', [False, True])
def test_layer_norm_equals_autograd_when_the_codes_are_exact(
        shape, with_affine):
    width = shape[-1]
    params = affine(width) if with_affine else ()

    def quantized(x, *wb):
        return quantized_layer_norm(x, (width, ), *(wb or (None, None)))

    def reference(x, *wb):
        return F.layer_norm(x, (width, ), *(wb or (None, None)))

    (ref_out, ref_grads), (out, grads) = reference_and_quantized(
        quantized, reference, on_grid(shape), params)
    assert_close(out, ref_out)
    for grad, ref_grad in zip(grads, ref_grads, strict=True):
        assert_close(grad, ref_grad)


@pytest.mark.parametrize('params', ['weight', 'weight and bias'])
def test_layer_norm_over_two_dimensions_without_an_input_gradient(params):
    # a frozen input, a trained affine weight (and bias), codes exact
    x = on_grid((2, 4, 8, 32))
    weight = torch.randn(8, 32, dtype=torch.float64, requires_grad=True)
    bias = (torch.randn(8, 32, dtype=torch.float64, requires_grad=True)
            if params == 'weight and bias' else None)
    grad = torch.randn(2, 4, 8, 32, dtype=torch.float64)
    expected = torch.autograd.grad(
        F.layer_norm(x, (8, 32), weight, bias), [weight] + (
            [bias] if bias is not None else []), grad)
    out = quantized_layer_norm(x, (8, 32), weight, bias)
    assert_close(out, F.layer_norm(x, (8, 32), weight, bias))
    got = torch.autograd.grad(out, [weight] + ([bias] if bias is not None
                                               else []), grad)
    for g, e in zip(got, expected, strict=True):
        assert_close(g, e)


@pytest.mark.parametrize('bits, tolerance', [(8, 0.02), (4, 0.3)])
def test_gradients_from_codes_of_a_real_valued_input_stay_close(
        bits, tolerance):
    x = torch.randn(4, 49, 96, generator=torch.Generator().manual_seed(3))
    weight, bias = affine(96, torch.float32)
    for quantized, reference in [
        (lambda t: quantized_gelu(t, bits=bits), F.gelu),
        (lambda t: quantized_layer_norm(t, (96, ), weight, bias, bits=bits),
         lambda t: F.layer_norm(t, (96, ), weight, bias)),
    ]:
        (ref_out, ref_grads), (out, grads) = reference_and_quantized(
            quantized, reference, x)
        assert_close(out, ref_out)
        error = (grads[0] - ref_grads[0]).norm() / ref_grads[0].norm()
        assert 0 < error < tolerance


def test_keeps_a_quarter_of_the_input_and_exact_token_statistics():
    x = torch.randn(8, 64, 256, requires_grad=True)
    size = x.numel() * x.element_size()
    with SavedTensorMeter() as gelu_meter:
        quantized_gelu(x)
    with SavedTensorMeter() as norm_meter:
        quantized_layer_norm(x, (256, ), None, None)
    codes = x.numel() + 8 * x.numel() // 256  # a byte each, low and step
    assert gelu_meter.bytes == codes
    assert norm_meter.bytes == codes + 2 * 4 * 8 * 64  # mean and rstd
    assert codes < size * 0.27


def test_the_global_random_state_is_untouched():
    x = torch.randn(2, 8, 32, requires_grad=True)
    state = torch.get_rng_state()
    generator = torch.Generator().manual_seed(0)
    quantized_gelu(x, generator=generator).sum().backward()
    quantized_layer_norm(x, (32, ), None, None,
                         generator=generator).sum().backward()
    assert torch.equal(torch.get_rng_state(), state)


def test_without_gradients_nothing_is_kept():
    x = torch.randn(2, 8, 32)
    with SavedTensorMeter() as meter:
        quantized_gelu(x)
        quantized_layer_norm(x, (32, ), None, None)
    assert meter.bytes == 0


def test_under_autocast_layer_norm_gives_autocasts_dtype():
    x = torch.randn(2, 8, 32, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = quantized_layer_norm(x.bfloat16(), (32, ), None, None)
        reference = F.layer_norm(x.bfloat16(), (32, ))
        gelu = quantized_gelu(reference)
    assert out.dtype == reference.dtype
    assert_close(out, reference)
    (out.sum() + gelu.sum()).backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize('bad', [3, 0, True])
def test_bad_bits_are_named(bad):
    with pytest.raises(ValueError, match=f'bits must be one of .*{bad!r}'):
        quantized_gelu(torch.randn(2, 4, requires_grad=True), bits=bad)
