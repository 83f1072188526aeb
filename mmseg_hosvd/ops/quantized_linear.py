"""Linear layer that stores its input quantized per group.

The per-group stochastic quantization of :mod:`.quantized_conv` does not
depend on the input's shape; the output and the input gradient are exact,
the weight gradient is ``G^T X`` of the dequantized input.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from .compressed_linear_function import (LinearRule, check_linear_input,
                                         compressed_linear,
                                         linear_weight_grad)
from .quantized_conv import (Dequantizing, check_bits, check_group_size,
                             packed_size, quantize_input, quantized_dtype)
from .shared_input import SharedDecomposition, store_decomposition
from .stats import StoredActivation


class QuantizedLinearRule(Dequantizing, LinearRule):
    """Linear weight gradient from the dequantized input."""

    def weight_grad(self, stored, grad_output, input_shape):
        return linear_weight_grad(self.dequantized(stored), grad_output)


def quantized_linear(x: torch.Tensor,
                     weight: torch.Tensor,
                     bias: Optional[torch.Tensor],
                     bits: int = 8,
                     group_size: int = 256,
                     generator: Optional[torch.Generator] = None,
                     shared: Optional[SharedDecomposition] = None
                     ) -> Tuple[torch.Tensor, Optional[StoredActivation]]:
    """Linear layer that stores its input quantized for backward.

    Args:
        x: Input (B, C), (B, N, C) or (B, H, W, C).
        weight: Weight (C', C).
        bias: Bias or None.
        bits: Bits per element, 2, 4 or 8.
        group_size: Elements per quantization group.
        generator: Source of the rounding noise.
        shared: Cache shared with the other layers reading ``x`` (codes
            made and stored once per forward).

    Returns:
        ``(output, stored)``: the exact output and the stored size in
        float32 equivalents; None when the weight needs no gradient and a
        plain ``F.linear`` ran.

    Raises:
        ValueError: For an input of another order, or bad ``bits`` or
            ``group_size``.
    """
    check_bits(bits)
    check_group_size(group_size)
    check_linear_input(x)
    if not (torch.is_grad_enabled() and weight.requires_grad):
        return F.linear(x, weight, bias), None
    rule = QuantizedLinearRule(bits, x.shape, quantized_dtype(x))

    def store(codes):
        out, size = compressed_linear(x, weight, bias, rule, codes)
        return out, packed_size(size, codes)

    out, size, _ = store_decomposition(
        shared, x, lambda t: quantize_input(t, bits, group_size,
                                            generator)[0], store)
    return out, size
