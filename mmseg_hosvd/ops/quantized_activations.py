"""LayerNorm and GELU that keep per-group codes for backward (approximate).

An exact backward of LayerNorm needs its whole input (the statistics are
per token and every element enters them), and GELU's needs its whole input
(GELU is not invertible): no exact form keeps less than one full-size tensor
per layer. These keep that tensor as per-group stochastic codes (see
:func:`~.quantized_codes.quantize`: 8 bits keep about a quarter of float32)
and LayerNorm's per-token mean and reciprocal standard deviation, exactly.
The outputs are exact; the input gradients (and LayerNorm's affine
gradients) are those of the exact backward at the dequantized input, so
they are approximate.
"""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from .checks import autocast_off
from .quantized_codes import (
    check_bits,
    check_group_size,
    dequantize,
    quantize_input,
)


def _needs_grad(*tensors) -> bool:
    return torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in tensors)


class _QuantizedGELUFunction(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x, approximate, bits, group_size, generator):
        out = F.gelu(x, approximate=approximate)
        codes, work_dtype = quantize_input(x, bits, group_size, generator)
        ctx.save_for_backward(*codes)
        ctx.meta = (approximate, bits, x.shape, x.dtype, work_dtype)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        approximate, bits, shape, dtype, work_dtype = ctx.meta
        x = dequantize(*ctx.saved_tensors, bits, shape, work_dtype)
        grad = torch.ops.aten.gelu_backward(grad_output.to(work_dtype), x,
                                            approximate=approximate)
        return grad.to(dtype), None, None, None, None


def quantized_gelu(x: torch.Tensor,
                   approximate: str = 'none',
                   bits: int = 8,
                   group_size: int = 256,
                   generator: Optional[torch.Generator] = None
                   ) -> torch.Tensor:
    """GELU that stores its input as ``bits``-bit codes for backward.

    Args:
        x: Input of any shape; its first dimension is the batch.
        approximate: 'none' or 'tanh', as ``F.gelu``.
        bits: Bits per code, 2, 4 or 8.
        group_size: Elements per quantization group.
        generator: Source of the rounding noise.

    Returns:
        The exact GELU of ``x``.

    Raises:
        ValueError: For bad ``bits`` or ``group_size``.
    """
    check_bits(bits)
    check_group_size(group_size)
    if not _needs_grad(x):
        return F.gelu(x, approximate=approximate)
    return _QuantizedGELUFunction.apply(x, approximate, bits, group_size,
                                        generator)


class _QuantizedLayerNormFunction(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x, weight, bias, normalized_shape, eps, bits,
                group_size, generator):
        with autocast_off(x):
            out, mean, rstd = torch.native_layer_norm(
                x, normalized_shape, weight, bias, eps)
        codes, work_dtype = quantize_input(x, bits, group_size, generator)
        ctx.save_for_backward(mean, rstd, weight, bias, *codes)
        ctx.meta = (normalized_shape, bits, x.shape, x.dtype, work_dtype)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        normalized_shape, bits, shape, dtype, work_dtype = ctx.meta
        mean, rstd, weight, bias, *codes = ctx.saved_tensors
        x = dequantize(*codes, bits, shape, work_dtype)
        mask = [ctx.needs_input_grad[0], weight is not None
                and ctx.needs_input_grad[1], bias is not None
                and ctx.needs_input_grad[2]]
        with autocast_off(x):
            grads = torch.ops.aten.native_layer_norm_backward(
                grad_output.to(work_dtype), x, normalized_shape,
                mean.to(work_dtype), rstd.to(work_dtype),
                None if weight is None else weight.to(work_dtype),
                None if bias is None else bias.to(work_dtype), mask)
        grad_x, grad_w, grad_b = grads
        if grad_x is not None:
            grad_x = grad_x.to(dtype)
        if grad_w is not None:
            grad_w = grad_w.to(weight.dtype)
        if grad_b is not None:
            grad_b = grad_b.to(bias.dtype)
        return grad_x, grad_w, grad_b, None, None, None, None, None


def quantized_layer_norm(x: torch.Tensor,
                         normalized_shape: Sequence[int],
                         weight: Optional[torch.Tensor],
                         bias: Optional[torch.Tensor],
                         eps: float = 1e-5,
                         bits: int = 8,
                         group_size: int = 256,
                         generator: Optional[torch.Generator] = None
                         ) -> torch.Tensor:
    """LayerNorm that stores its input as ``bits``-bit codes for backward.

    Args:
        x: Input (B, ..., *normalized_shape).
        normalized_shape: The normalized trailing dimensions.
        weight: Affine weight or None.
        bias: Affine bias or None.
        eps: LayerNorm's epsilon.
        bits: Bits per code, 2, 4 or 8.
        group_size: Elements per quantization group.
        generator: Source of the rounding noise.

    Returns:
        The exact LayerNorm of ``x``, in the dtype autocast gives
        ``F.layer_norm`` when it is on.

    Raises:
        ValueError: For bad ``bits`` or ``group_size``.
    """
    check_bits(bits)
    check_group_size(group_size)
    normalized_shape = tuple(normalized_shape)
    if not _needs_grad(x, weight, bias):
        return F.layer_norm(x, normalized_shape, weight, bias, eps)
    if torch.is_autocast_enabled(x.device.type):
        # the dtype autocast gives layer_norm here: float32 on CUDA, the
        # input's on CPU
        probe = x.new_zeros((1, ) + normalized_shape)
        x = x.to(F.layer_norm(probe, normalized_shape).dtype)
    return _QuantizedLayerNormFunction.apply(x, weight, bias,
                                             normalized_shape, eps, bits,
                                             group_size, generator)
