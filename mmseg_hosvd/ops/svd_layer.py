"""Convolutions and Linear layers whose input is stored as a truncated SVD.

The input is seen as a (B, rest) matrix, the batch mode against all the
others, so a Linear layer and a convolution reading one tensor store the
same factors. :func:`~.svd_conv.svd_conv2d` and
:func:`~.svd_linear.svd_linear` run :func:`svd_layer`.
"""
from typing import Optional, Tuple

import torch

from .compressed_function import BackwardRule, decomposed_layer
from .conv_geometry import ConvGeometry
from .decomposition import check_eps, truncated_svd
from .layer_operation import exact_weight_grad
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
    """Backward that rebuilds the input from U (B, k) and P (k, rest)."""

    def weight_grad(self, stored, grad, weight_shape, geo, input_shape):
        """Exact weight gradient of the rebuilt rank-k input."""
        left, right = stored
        return exact_weight_grad((left @ right).reshape(input_shape),
                                 weight_shape, grad, geo)

    def ranks(self, stored):
        """The single SVD rank k."""
        return (stored[0].shape[1], )


#: The rule of every layer that stores an SVD form.
SVD_RULE = SVDRule()


def svd_layer(x: torch.Tensor, weight: torch.Tensor,
              bias: Optional[torch.Tensor], geo: Optional[ConvGeometry],
              eps: float, shared: Optional[SharedDecomposition]
              ) -> Tuple[torch.Tensor, Optional[StoredActivation]]:
    """Layer that stores an SVD-eps form of its input for backward.

    What :func:`~.svd_conv.svd_conv2d` and :func:`~.svd_linear.svd_linear`
    run, ``geo`` None for a Linear layer.
    """
    eps = check_eps(eps)
    out, stored, _ = decomposed_layer(
        x, weight, bias, geo, SVD_RULE,
        lambda tensor: batch_svd_factors(tensor, eps), shared)
    return out, stored
