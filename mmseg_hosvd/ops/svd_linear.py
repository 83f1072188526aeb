"""Linear layer storing a truncated SVD of its input as a (B, rest) matrix.

The same SVD-eps as the convolutions' (:mod:`.svd_conv`): the batch mode
against all the others, so a Linear layer and a convolution reading one
tensor store the same factors.
"""
from typing import Optional, Tuple

import torch

from .checks import check_eps
from .compressed_linear_function import (LinearRule, decomposed_linear,
                                         linear_weight_grad)
from .shared_input import SharedDecomposition
from .stats import StoredActivation
from .svd_conv import batch_svd_factors


class SVDLinearRule(LinearRule):
    """Backward that rebuilds the input from U (B, k) and P (k, rest)."""

    def weight_grad(self, stored, grad_output, input_shape):
        """Exact weight gradient of the rebuilt rank-k input."""
        left, right = stored
        return linear_weight_grad((left @ right).reshape(input_shape),
                                  grad_output)

    def ranks(self, stored):
        """The single SVD rank k."""
        return (stored[0].shape[1], )


#: The rule of every Linear layer that stores an SVD form.
SVD_LINEAR_RULE = SVDLinearRule()


def svd_linear(x: torch.Tensor,
               weight: torch.Tensor,
               bias: Optional[torch.Tensor],
               eps: float = 0.8,
               shared: Optional[SharedDecomposition] = None
               ) -> Tuple[torch.Tensor, Optional[StoredActivation]]:
    """Linear layer that stores an SVD-eps form of its input for backward.

    ``U`` (B, k) and ``diag(S) Vh`` (k, rest) are stored, ``B k + k rest``
    numbers.

    Args:
        x: Input (B, C), (B, N, C) or (B, H, W, C).
        weight: Weight (C', C).
        bias: Bias or None.
        eps: Explained-variance threshold in (0, 1].
        shared: Cache shared with the other layers that read ``x``.

    Returns:
        ``(output, stored)``; ``stored`` is None when the weight needs no
        gradient and a plain ``F.linear`` ran, and has 0 elements when
        another layer stored the same factors.

    Raises:
        ValueError: For an input of another order, eps outside (0, 1], or
            NaN/Inf.
    """
    eps = check_eps(eps)
    out, stored, _ = decomposed_linear(
        x, weight, bias, SVD_LINEAR_RULE,
        lambda tensor: batch_svd_factors(tensor, eps), shared)
    return out, stored
