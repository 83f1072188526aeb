"""Per-group stochastic codes of a tensor (ActNN / GACT idea).

A tensor is cut into groups of ``group_size`` consecutive elements of each
sample; each group keeps its minimum and its step, and every element a code
of ``bits`` bits, rounded stochastically (up with the probability of its
distance to the lower level), so the dequantized tensor is unbiased. Codes
are packed into bytes. The quantized layers (:mod:`.quantized_layer`) and
activations (:mod:`.quantized_activations`) store their inputs so.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

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
    """The tensor of ``shape`` that :func:`quantize` stored.

    Args:
        packed: The packed codes (B, ...), or a batch slice of them.
        low: The groups' minima (B, groups), sliced alike.
        step: The groups' steps (B, groups), sliced alike.
        bits: Bits per code.
        shape: Shape of the tensor (of the slice), batch first.
        dtype: Dtype of the result.

    Returns:
        The dequantized tensor of ``shape``.
    """
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
