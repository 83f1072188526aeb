"""Linear layer storing a truncated SVD of its input as a (B, rest) matrix.

The same SVD-eps as the convolutions' (:mod:`.svd_layer`): the batch mode
against all the others, so a Linear layer and a convolution reading one
tensor store the same factors.
"""
from typing import Optional, Tuple

import torch

from .shared_input import SharedDecomposition
from .stats import StoredActivation
from .svd_layer import svd_layer


def svd_linear(x: torch.Tensor,
               weight: torch.Tensor,
               bias: Optional[torch.Tensor],
               eps: float = 0.8,
               shared: Optional[SharedDecomposition] = None
               ) -> Tuple[torch.Tensor, Optional[StoredActivation]]:
    """Linear layer that stores an SVD-eps form of its input for backward.

    The Linear form of :func:`~.svd_conv.svd_conv2d`, which documents the
    arguments and the result: ``U`` (B, k) and ``diag(S) Vh`` (k, rest) are
    stored, ``B k + k rest`` numbers.

    Raises:
        ValueError: For an input of another order, eps outside (0, 1], or
            NaN/Inf.
    """
    return svd_layer(x, weight, bias, None, eps, shared)
