"""Convolution storing a truncated SVD of its (B, C H W) input matrix.

The SVD form, its backward rule and the layer it runs are shared with the
Linear layers (:mod:`.svd_layer`).
"""
from typing import Optional, Tuple

import torch

from .conv_geometry import ConvGeometry
from .shared_input import SharedDecomposition
from .stats import StoredActivation
from .svd_layer import svd_layer


def svd_conv2d(x: torch.Tensor,
               weight: torch.Tensor,
               bias: Optional[torch.Tensor],
               geo: ConvGeometry,
               eps: float = 0.8,
               shared: Optional[SharedDecomposition] = None
               ) -> Tuple[torch.Tensor, Optional[StoredActivation]]:
    """Convolution that stores an SVD-eps form of its input for backward.

    The input is reshaped to a (B, C H W) matrix; ``U`` (B, k) and
    ``diag(S) Vh`` (k, C H W) are stored, ``B k + k C H W`` numbers.

    Args:
        x: Input (B, C, H, W).
        weight: Weight.
        bias: Bias or None.
        geo: Geometry.
        eps: Explained-variance threshold in (0, 1].
        shared: Cache shared with the other convolutions that read ``x``.

    Returns:
        ``(output, stored)``; ``stored`` is None when the weight needs no
        gradient and a plain convolution ran, and has 0 elements when
        another convolution stored the same factors.

    Raises:
        ValueError: For a non-4-D input, eps outside (0, 1], or NaN/Inf.
    """
    return svd_layer(x, weight, bias, geo, eps, shared)
