"""Convolution that stores its input quantized per group (ActNN / GACT idea).

The input is cut into groups of ``group_size`` consecutive elements of each
sample; each group keeps its minimum and its step, and every element a code
of ``bits`` bits, rounded stochastically (up with the probability of its
distance to the lower level), so the dequantized input, and the weight
gradient formed from it, are unbiased. Codes are packed into bytes. The
output and the input gradient are exact. :func:`quantized_layer` serves the
Linear layers too (:mod:`.quantized_linear`).
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from .compressed_function import BackwardRule, compressed_layer
from .conv_geometry import ConvGeometry
from .layer_operation import (
    check_layer_input,
    exact_weight_grad,
    layer_forward,
)
from .shared_input import SharedDecomposition, store_decomposition
from .stats import ANALYTICAL_BYTES_PER_ELEMENT, StoredActivation

#: Code widths that pack evenly into bytes.
BITS = (2, 4, 8)
#: Groups quantized at a time (bounds the float temporaries).
CHUNK_GROUPS = 4096


def check_bits(bits: int) -> int:
    """One of :data:`BITS`, or a ValueError naming the bad value."""
    if isinstance(bits, bool) or bits not in BITS:
        raise ValueError(f'bits must be one of {BITS}, got {bits!r}')
    return bits


def check_group_size(group_size: int) -> int:
    """A positive multiple of 4 (whole bytes of 2-bit codes), or a
    ValueError naming the bad value."""
    if isinstance(group_size, bool) or not isinstance(
            group_size, int) or group_size < 4 or group_size % 4:
        raise ValueError(f'group_size must be a positive multiple of 4, got '
                         f'{group_size!r}')
    return group_size


def quantize(x: torch.Tensor, bits: int, group_size: int,
             generator: Optional[torch.Generator] = None
             ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-group stochastic quantization of ``x`` (B, ...).

    Groups are processed :data:`CHUNK_GROUPS` at a time, so the float
    temporaries stay small whatever the size of ``x``.

    Args:
        x: The tensor; its first dimension is the batch.
        bits: Bits per code, one of :data:`BITS`.
        group_size: Elements per group (within a sample).
        generator: Source of the rounding noise (the global one if None).

    Returns:
        ``(packed, low, step)``: codes packed into uint8 (B, ceil(n / g) *
        g * bits / 8), the float32 minimum and step of each group
        (B, ceil(n / g)).
    """
    batch = x.shape[0]
    work = x.detach().reshape(batch, -1)
    per_sample = -(-work.shape[1] // group_size)
    pad = per_sample * group_size - work.shape[1]
    if pad:  # a copy only when a sample is not a whole number of groups
        work = F.pad(work, (0, pad))
    groups = work.reshape(batch * per_sample, group_size)
    levels, per_byte = 2**bits - 1, 8 // bits
    shifts = torch.arange(per_byte, device=x.device, dtype=torch.uint8) * bits
    packed = torch.empty(groups.shape[0], group_size // per_byte,
                         dtype=torch.uint8, device=x.device)
    low = torch.empty(groups.shape[0], device=x.device)
    step = torch.empty_like(low)
    for start in range(0, groups.shape[0], CHUNK_GROUPS):
        rows = slice(start, start + CHUNK_GROUPS)
        part = groups[rows].float()
        low[rows] = part.amin(-1)
        step[rows] = (part.amax(-1) - low[rows]) / levels
        scaled = (part - low[rows, None]) / step[rows, None].clamp_min(
            torch.finfo(torch.float32).tiny)
        scaled += torch.rand(scaled.shape, generator=generator,
                             device=x.device)
        codes = scaled.floor_().clamp_(0, levels).to(torch.uint8)
        packed[rows] = (codes.reshape(codes.shape[0], -1, per_byte)
                        << shifts).sum(-1, dtype=torch.uint8)
    return (packed.reshape(batch, -1), low.reshape(batch, per_sample),
            step.reshape(batch, per_sample))


def dequantize(packed: torch.Tensor, low: torch.Tensor, step: torch.Tensor,
               bits: int, shape, dtype: torch.dtype) -> torch.Tensor:
    """The tensor of ``shape`` that :func:`quantize` stored."""
    per_byte = 8 // bits
    shifts = torch.arange(per_byte, device=packed.device,
                          dtype=torch.uint8) * bits
    codes = packed[..., None] >> shifts
    codes &= (1 << bits) - 1
    values = codes.reshape(*low.shape, -1).float()
    del codes
    # in place: one full-size float32 tensor for the values, not three
    values.mul_(step[..., None]).add_(low[..., None])
    numel = 1
    for size in shape[1:]:
        numel *= size
    return values.reshape(shape[0], -1)[:, :numel].reshape(shape).to(dtype)


def quantize_input(x: torch.Tensor, bits: int, group_size: int,
                   generator: Optional[torch.Generator] = None
                   ) -> Tuple[Tuple[torch.Tensor, ...], torch.dtype]:
    """:func:`quantize` of a layer input, in float32 (float64 kept).

    Returns:
        ``(stored, dtype)``: what :func:`quantize` returned, and the dtype
        the input is dequantized to.
    """
    work = x.to(quantized_dtype(x))
    return quantize(work, bits, group_size, generator), work.dtype


def quantized_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype a layer input is quantized from and dequantized to."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def packed_size(size: StoredActivation,
                stored: Tuple[torch.Tensor, ...]) -> StoredActivation:
    """``size`` with the stored bytes counted in float32 equivalents."""
    nbytes = sum(t.numel() * t.element_size() for t in stored)
    return size._replace(numel=-(-nbytes // ANALYTICAL_BYTES_PER_ELEMENT))


class QuantizedRule(BackwardRule):
    """Exact weight gradient of the input rebuilt from its codes.

    Args:
        bits: Bits per code.
        input_shape: Shape of the stored input.
        dtype: Dtype the input is dequantized to.
    """

    def __init__(self, bits: int, input_shape, dtype: torch.dtype):
        self.bits = bits
        self.input_shape = tuple(input_shape)
        self.dtype = dtype

    def weight_grad(self, stored, grad, weight_shape, geo, input_shape):
        """Exact weight gradient of the dequantized input."""
        x = dequantize(*stored, self.bits, self.input_shape, self.dtype)
        return exact_weight_grad(x, weight_shape, grad, geo)

    def ranks(self, stored):
        """None: codes have no rank."""
        return None


def quantized_conv2d(x: torch.Tensor,
                     weight: torch.Tensor,
                     bias: Optional[torch.Tensor],
                     geo: ConvGeometry,
                     bits: int = 8,
                     group_size: int = 256,
                     generator: Optional[torch.Generator] = None,
                     shared: Optional[SharedDecomposition] = None
                     ) -> Tuple[torch.Tensor, Optional[StoredActivation]]:
    """Convolution that stores its input quantized for backward.

    Args:
        x: Input (B, C, H, W).
        weight: Weight.
        bias: Bias or None.
        geo: Geometry.
        bits: Bits per element, one of :data:`BITS`.
        group_size: Elements per quantization group.
        generator: Source of the rounding noise.
        shared: Cache shared with the other layers reading ``x``: the codes
            are then made and stored once per forward (stored size 0 for
            all but the first).

    Returns:
        ``(output, stored)``: the exact output and the stored size in
        float32 equivalents (codes, minima and steps); None when the weight
        needs no gradient and a plain convolution ran.
    """
    return quantized_layer(x, weight, bias, geo, bits, group_size,
                           generator, shared)


def quantized_layer(x: torch.Tensor, weight: torch.Tensor,
                    bias: Optional[torch.Tensor], geo: Optional[ConvGeometry],
                    bits: int, group_size: int,
                    generator: Optional[torch.Generator],
                    shared: Optional[SharedDecomposition]
                    ) -> Tuple[torch.Tensor, Optional[StoredActivation]]:
    """Layer that stores its input quantized for backward.

    What :func:`quantized_conv2d` and
    :func:`~.quantized_linear.quantized_linear` run, ``geo`` None for a
    Linear layer.
    """
    check_bits(bits)
    check_group_size(group_size)
    check_layer_input(x, geo)
    if not (torch.is_grad_enabled() and weight.requires_grad):
        return layer_forward(x, weight, bias, geo), None
    rule = QuantizedRule(bits, x.shape, quantized_dtype(x))

    def store(codes):
        out, size = compressed_layer(x, weight, bias, geo, rule, codes)
        return out, packed_size(size, codes)

    out, size, _ = store_decomposition(
        shared, x, lambda t: quantize_input(t, bits, group_size,
                                            generator)[0], store)
    return out, size
