"""Convolution storing a truncated SVD of its (B, C H W) input matrix."""
from typing import Optional, Tuple

import torch

from .compressed_conv_function import BackwardRule, decomposed_conv2d
from .conv_geometry import ConvGeometry, conv2d_weight_grad
from .decomposition import check_eps, truncated_svd
from .shared_input import SharedDecomposition
from .stats import StoredActivation


def batch_svd_factors(tensor: torch.Tensor,
                      eps: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """SVD-eps of ``tensor`` seen as a (B, rest) matrix, as two factors.

    Args:
        tensor: A batch (B, ...).
        eps: Explained-variance threshold in (0, 1].

    Returns:
        ``U`` (B, k) and ``diag(S) Vh`` (k, rest), whose product is the
        rank-k reconstruction.
    """
    u, s, vh = truncated_svd(tensor.detach().reshape(tensor.shape[0], -1),
                             eps=eps)
    return u, (s.unsqueeze(1) * vh).contiguous()


class SVDRule(BackwardRule):
    """Backward that rebuilds the input from U (B, k) and P (k, C H W)."""

    def weight_grad(self, stored, grad, weight_shape, geo, input_shape):
        """Exact weight gradient of the rebuilt rank-k input."""
        left, right = stored
        rebuilt = (left @ right).reshape(input_shape)
        return conv2d_weight_grad(rebuilt, weight_shape,
                                  grad.to(rebuilt.dtype), geo)

    def ranks(self, stored):
        """The single SVD rank k."""
        return (stored[0].shape[1], )


#: The rule of every convolution that stores an SVD form.
SVD_RULE = SVDRule()


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
    eps = check_eps(eps)
    out, stored, _ = decomposed_conv2d(
        x, weight, bias, geo, SVD_RULE,
        lambda tensor: batch_svd_factors(tensor, eps), shared)
    return out, stored
