"""Convolution or Linear layer that stores its input as per-group codes.

The input is kept as the codes of :mod:`.quantized_codes` (ActNN / GACT
idea). The output and the input gradient are exact; the weight gradient is
the exact one of the dequantized input, which is unbiased. The input is
dequantized a batch slice at a time (:data:`WEIGHT_GRAD_SLICE_BYTES`) and
the slices' weight gradients are summed, a convolution's one kernel tap at
a time (:mod:`.tap_weight_grad`), so the backward holds neither the
full-size input the codes replace nor the CPU kernel's workspace.
:func:`quantized_layer` serves the convolutions (:mod:`.quantized_conv`)
and the Linear layers (:mod:`.quantized_linear`).
"""
import math
from typing import Optional, Sequence, Tuple

import torch

from .compressed_function import BackwardRule, compressed_layer
from .conv_geometry import ConvGeometry
from .layer_operation import (
    check_layer_input,
    layer_forward,
    linear_weight_grad,
)
from .quantized_codes import (
    check_bits,
    check_group_size,
    dequantize,
    quantize_input,
    quantized_dtype,
)
from .shared_input import SharedDecomposition, store_decomposition
from .stats import ANALYTICAL_BYTES_PER_ELEMENT, StoredActivation
from .tap_weight_grad import conv2d_weight_grad_by_taps

#: The weight gradient dequantizes at most this many bytes of the input at
#: a time, and at least one sample: a slice's transient is about twice the
#: slice (the dequantized slice and one kernel tap's copies of it and of
#: the output gradient), so a slice must be a small part of the batch to
#: lower the peak. Smaller samples (a Linear layer's (B, C) rows) are
#: grouped up to this size.
WEIGHT_GRAD_SLICE_BYTES = 2**18


def packed_size(size: StoredActivation,
                stored: Tuple[torch.Tensor, ...]) -> StoredActivation:
    """``size`` with the stored bytes counted in float32 equivalents."""
    nbytes = sum(t.numel() * t.element_size() for t in stored)
    return size._replace(numel=-(-nbytes // ANALYTICAL_BYTES_PER_ELEMENT))


def sliced_weight_grad(stored: Sequence[torch.Tensor], bits: int,
                       input_shape: Sequence[int], dtype: torch.dtype,
                       grad_output: torch.Tensor,
                       weight_shape: Sequence[int],
                       geo: Optional[ConvGeometry]) -> torch.Tensor:
    """Exact weight gradient of the input :func:`~.quantized_codes.quantize`
    stored.

    The input is dequantized in batch slices of at most
    :data:`WEIGHT_GRAD_SLICE_BYTES` (at least one sample) and the slices'
    gradients are summed (a convolution's by
    :func:`~.tap_weight_grad.conv2d_weight_grad_by_taps`, into one
    tensor): the transient is a slice's input, not the whole.
    The codes are those of the whole input, so the result is the gradient
    of the fully dequantized input up to the order of the float sums.

    Args:
        stored: ``(packed, low, step)`` of the input.
        bits: Bits per code.
        input_shape: Shape of the input.
        dtype: Dtype the input is dequantized to.
        grad_output: Gradient of the output.
        weight_shape: (C', C / groups, kh, kw), or (C', C).
        geo: The convolution's geometry, or None for a Linear layer.

    Returns:
        The weight gradient, in ``dtype``.
    """
    packed, low, step = stored
    batch = input_shape[0]
    sample_bytes = math.prod(input_shape[1:]) * torch.finfo(dtype).bits // 8
    size = max(1, WEIGHT_GRAD_SLICE_BYTES // max(sample_bytes, 1))
    total = None
    # each slice is freed before the next is made
    for start in range(0, batch, size):
        rows = slice(start, start + size)
        x = dequantize(packed[rows], low[rows], step[rows], bits,
                       (low[rows].shape[0], ) + tuple(input_shape[1:]),
                       dtype)
        if geo is not None:
            total = conv2d_weight_grad_by_taps(x, weight_shape,
                                               grad_output[rows], geo, total)
        elif total is None:
            total = linear_weight_grad(x, grad_output[rows])
        else:
            total += linear_weight_grad(x, grad_output[rows])
        del x
    return total


class QuantizedRule(BackwardRule):
    """Exact weight gradient of the input rebuilt from its codes, a batch
    slice at a time (:func:`sliced_weight_grad`).

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
        return sliced_weight_grad(stored, self.bits, self.input_shape,
                                  self.dtype, grad, weight_shape, geo)

    def ranks(self, stored):
        """None: codes have no rank."""
        return None


def quantized_layer(x: torch.Tensor, weight: torch.Tensor,
                    bias: Optional[torch.Tensor], geo: Optional[ConvGeometry],
                    bits: int, group_size: int,
                    generator: Optional[torch.Generator],
                    shared: Optional[SharedDecomposition]
                    ) -> Tuple[torch.Tensor, Optional[StoredActivation]]:
    """Layer that stores its input quantized for backward.

    What :func:`~.quantized_conv.quantized_conv2d` and
    :func:`~.quantized_linear.quantized_linear` run, ``geo`` None for a
    Linear layer.

    Args:
        x, weight, bias, geo: As for
            :func:`~.compressed_function.decomposed_layer`.
        bits: Bits per element, one of :data:`~.quantized_codes.BITS`.
        group_size: Elements per quantization group.
        generator: Source of the rounding noise.
        shared: Cache shared with the other layers reading ``x``: the codes
            are then made and stored once per forward (stored size 0 for
            all but the first).

    Returns:
        ``(output, stored)``: the exact output and the stored size in
        float32 equivalents (codes, minima and steps); None when the weight
        needs no gradient and the plain operation ran.

    Raises:
        ValueError: For an input of the wrong order or dtype, or bad
            ``bits`` or ``group_size``.
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
