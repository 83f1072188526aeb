"""The decompositions and the quantization keep their temporaries small."""
import pytest
import torch

from mmseg_hosvd.ops import (
    ConvGeometry,
    hosvd,
    hosvd_weight_grad,
    mode_dot,
    quantize,
    quantized_conv2d,
    quantized_linear,
)
from mmseg_hosvd.utils.step_memory import transient_peak_bytes


@pytest.mark.parametrize('layout', [torch.contiguous_format,
                                    torch.channels_last])
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
@pytest.mark.parametrize('solver', ['eigh', 'auto'])
def test_hosvd_copies_no_unfolding_whole(solver, dtype, layout):
    gen = torch.Generator().manual_seed(0)
    x = torch.einsum('bkhw,ck->bchw', torch.randn(4, 3, 64, 64, generator=gen),
                     torch.randn(64, 3, generator=gen)).to(dtype).contiguous(
                         memory_format=layout)
    size = x.numel() * x.element_size()
    used = transient_peak_bytes(lambda: hosvd(x, eps=0.9, solver=solver))
    # one chunk at a time (an eighth of the input in float32, so a quarter
    # of a bfloat16 input), 64 x 64 Gram matrices and their eigensolver,
    # the factors and the first mode product (a tenth of the input here);
    # one unfolding copied whole would be 1x the input, and a bfloat16
    # input cast whole to float32 2x; a channels-last input is read where
    # it lies, not made contiguous (1x)
    assert used < size * 0.4


@pytest.mark.parametrize('layout', [torch.contiguous_format,
                                    torch.channels_last])
def test_a_ritz_mode_keeps_its_projection_small(layout, ritz_calls):
    """The Ritz solver's projection, kept for the core, is at most an
    eighth of the input while the other modes are solved."""
    gen = torch.Generator().manual_seed(0)
    x = torch.einsum('bkhw,ck->bchw', torch.randn(4, 3, 32, 32, generator=gen),
                     torch.randn(512, 3, generator=gen)).contiguous(
                         memory_format=layout)
    size = x.numel() * x.element_size()
    used = transient_peak_bytes(lambda: hosvd(x, eps=0.9))
    assert ritz_calls == [(512, 4096)]  # the channel mode
    # the chunks and the small Gram matrices (0.09-0.13 of the input
    # without the projection), the projection (32 of 512 rows here) and
    # its rotation: 0.14 when measured; a projection of a quarter of the
    # rows or a copied unfolding would not fit
    assert used < size * 0.25


@pytest.mark.parametrize('padding', [(36, 36, 36, 36), (35, 37, 36, 36)])
def test_hosvd_weight_grad_does_not_expand_to_the_padded_size(
        padding):
    # DeepLabV3's ASPP: dilation 36 on a 16 x 16 map, padded to 88 x 88
    x = torch.randn(8, 64, 16, 16)
    core, factors = hosvd(x, eps=1.0)
    grad = torch.randn(8, 32, 16, 16)
    geo = ConvGeometry.make(1, padding, 36)
    exact = transient_peak_bytes(
        lambda: torch.nn.grad.conv2d_weight(x, (32, 64, 3, 3), grad, 1, 36,
                                            36))
    used = transient_peak_bytes(
        lambda: hosvd_weight_grad(core, factors, grad, (32, 64, 3, 3), geo))
    size = x.numel() * x.element_size()
    # the exact kernel's own workspace, the core expanded to the input's
    # height and width (1x the input at full rank, two rows more when the
    # sides differ) and the output gradient projected on the batch factor
    # (0.5x); the core expanded to the padded size would be 30x the input
    assert used < exact + 2 * size


@pytest.mark.parametrize('layout, mode', [
    (layout, mode) for layout in ('contiguous', 'channels_last')
    for mode in range(3)
] + [('batch_slice', 0), ('batch_slice', 1)])
def test_mode_products_copy_nothing_full_size(layout, mode):
    """A channels-last gradient (what a transformer head's convolution
    gets) is multiplied where it lies, not copied to be reshaped; so is a
    batch slice where its mode's unfolding is a view (not for the height
    mode, whose unfolding no view gives)."""
    x = {
        'contiguous': lambda: torch.randn(4, 256, 32, 32),
        'channels_last': lambda: torch.randn(4, 256, 32, 32).contiguous(
            memory_format=torch.channels_last),
        'batch_slice': lambda: torch.randn(8, 256, 32, 32)[::2],
    }[layout]()
    factor = torch.randn(3, x.shape[mode])
    used = transient_peak_bytes(lambda: mode_dot(x, factor, mode))
    size = x.numel() * x.element_size()
    product = size * factor.shape[0] // x.shape[mode]
    assert used < product + size / 10


@pytest.mark.parametrize('bits', [2, 8])
def test_quantization_temporaries_do_not_grow_with_the_input(bits):
    x = torch.randn(16, 256, 64, 64)  # 64 MB
    size = x.numel() * x.element_size()
    used = transient_peak_bytes(lambda: quantize(x, bits, 256))
    # the packed codes (bits / 32 of the input) and one chunk's floats
    assert used < size * (bits / 32 + 0.25)


def _quantized_conv(x, weight):
    return quantized_conv2d(x, weight, None, ConvGeometry.make(1, 1), 2,
                            256)[0]


def _quantized_linear(x, weight):
    return quantized_linear(x, weight, None, 8, 256)[0]


@pytest.mark.parametrize('layer, x_shape, weight_shape', [
    (_quantized_conv, (16, 16, 64, 64), (16, 16, 3, 3)),
    (_quantized_linear, (16, 1024, 64), (32, 64)),
], ids=['conv', 'linear'])
def test_quantized_weight_gradient_dequantizes_a_slice_at_a_time(
        layer, x_shape, weight_shape):
    x = torch.randn(x_shape)  # 4 MB, 256 KB a sample
    weight = torch.randn(weight_shape, requires_grad=True)
    out = layer(x, weight)
    grad_out = torch.randn_like(out)
    used = transient_peak_bytes(
        lambda: torch.autograd.grad(out, [weight], grad_out))
    size = x.numel() * x.element_size()
    # one sample dequantized (a sixteenth of the input, its codes a quarter
    # of that) and the kernel's workspace for one sample: 0.2 (convolution)
    # and 0.08 (Linear) of the input when measured; the input dequantized
    # whole, with the kernel's workspace for all of it, 3x and 1.25x
    assert used < size / 2


def test_quantized_dilated_branch_backward_holds_less_than_its_input():
    # an ASPP branch at a 128 x 128 crop, output stride 8, batch 8:
    # PyTorch's CPU weight-gradient kernel held 18 MB (4.5x the input) for
    # any batch slice, which put the quantized backward's peak above
    # vanilla's
    x = torch.randn(8, 512, 16, 16)
    weight = torch.randn(128, 512, 3, 3, requires_grad=True)
    out = quantized_conv2d(x, weight, None, ConvGeometry.make(1, 12, 12), 2,
                           256)[0]
    grad_out = torch.randn_like(out)
    used = transient_peak_bytes(
        lambda: torch.autograd.grad(out, [weight], grad_out))
    weight_bytes = weight.numel() * weight.element_size()
    size = x.numel() * x.element_size()
    assert used < weight_bytes + size / 4
