"""Convolution that stores its input quantized per group (ActNN / GACT idea).

The convolution form of :func:`~.quantized_layer.quantized_layer`: the
input is kept as per-group stochastic codes (:mod:`.quantized_codes`), the
output and the input gradient are exact, and the weight gradient is formed
from the codes a batch slice at a time.
"""
from typing import Optional, Tuple

import torch

from .conv_geometry import ConvGeometry
from .quantized_layer import quantized_layer
from .shared_input import SharedDecomposition
from .stats import StoredActivation


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
        weight, bias, bits, group_size, generator, shared: As for
            :func:`~.quantized_layer.quantized_layer`.
        geo: Geometry.

    Returns:
        ``(output, stored)`` as :func:`~.quantized_layer.quantized_layer`
        returns them (None: a plain convolution ran).
    """
    return quantized_layer(x, weight, bias, geo, bits, group_size,
                           generator, shared)
