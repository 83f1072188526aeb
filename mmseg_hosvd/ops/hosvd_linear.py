"""Linear layer whose input is stored as a HOSVD (Tucker) decomposition.

The input (B, C), (B, N, C) or (B, H, W, C) is decomposed as a tensor of as
many modes, the channel mode last. The output and the input gradient are
exact; the weight gradient ``G^T X`` is formed in the compressed space
(:mod:`.hosvd_layer`).
"""
from typing import Optional, Sequence, Tuple

import torch

from .decomposition_settings import DecompositionSettings, resolve_settings
from .hosvd_layer import (
    hosvd_layer,
    hosvd_linear_weight_grad,
    subspace_hosvd_layer,
)
from .shared_input import SharedDecomposition
from .stats import StoredActivation
from .warm_start import WarmStart

__all__ = [
    'hosvd_linear', 'hosvd_linear_weight_grad', 'subspace_hosvd_linear'
]


def subspace_hosvd_linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    ranks: Sequence[int],
    previous: Optional[Sequence[Optional[torch.Tensor]]] = None,
    shared: Optional[SharedDecomposition] = None
) -> Tuple[torch.Tensor, Optional[StoredActivation], Optional[list]]:
    """Linear layer storing a fixed-rank Tucker form from subspace iteration.

    The Linear form of :func:`~.hosvd_conv.subspace_hosvd_conv2d`: one rank
    per mode of ``x`` (B, C), (B, N, C) or (B, H, W, C).

    Returns:
        ``(output, stored, factors)``, as the convolution's.

    Raises:
        ValueError: For an input of another order, or ranks that are not
            one per mode of ``x``.
    """
    return subspace_hosvd_layer(x, weight, bias, None, ranks, previous,
                                shared)


def hosvd_linear(x: torch.Tensor, weight: torch.Tensor,
                 bias: Optional[torch.Tensor], eps: float = 0.8,
                 shared: Optional[SharedDecomposition] = None,
                 solver: str = 'auto', *,
                 settings: Optional[DecompositionSettings] = None,
                 warm_start: Optional[WarmStart] = None
                 ) -> Tuple[torch.Tensor, Optional[StoredActivation]]:
    """Linear layer that stores a HOSVD-eps form of its input for backward.

    The Linear form of :func:`~.hosvd_conv.hosvd_conv2d`, which documents the
    settings, the result and the errors; a Linear layer has no ``geo``.

    Args:
        x: Input (B, C), (B, N, C) or (B, H, W, C).
        weight: Weight (C', C).
        bias: Bias or None.
        eps: Explained-variance threshold.
        shared: Cache shared with the other layers that read ``x``.
        solver: The solver's name.
        settings: The decomposition's settings.
        warm_start: The previous step's leading vectors of this input.

    Returns:
        ``(output, stored)``: the exact output and what was stored.
    """
    return hosvd_layer(x, weight, bias, None,
                       resolve_settings(settings, eps, solver), shared,
                       warm_start)
