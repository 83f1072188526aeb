"""Linear layer that stores its input quantized per group.

The per-group stochastic codes of :mod:`.quantized_codes` do not depend on
the input's shape; the output and the input gradient are exact, the weight
gradient is ``G^T X`` of the dequantized input, summed over batch slices
(:func:`~.quantized_layer.sliced_weight_grad`).
"""
from typing import Optional, Tuple

import torch

from .quantized_layer import quantized_layer
from .shared_input import SharedDecomposition
from .stats import StoredActivation


def quantized_linear(x: torch.Tensor,
                     weight: torch.Tensor,
                     bias: Optional[torch.Tensor],
                     bits: int = 8,
                     group_size: int = 256,
                     generator: Optional[torch.Generator] = None,
                     shared: Optional[SharedDecomposition] = None
                     ) -> Tuple[torch.Tensor, Optional[StoredActivation]]:
    """Linear layer that stores its input quantized for backward.

    The Linear form of :func:`~.quantized_conv.quantized_conv2d`, which
    documents the arguments and the result; a Linear layer has no ``geo``.

    Raises:
        ValueError: For an input of another order, or bad ``bits`` or
            ``group_size``.
    """
    return quantized_layer(x, weight, bias, None, bits, group_size,
                           generator, shared)
