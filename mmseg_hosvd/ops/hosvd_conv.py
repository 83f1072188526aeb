"""Convolution whose input is stored as a HOSVD (Tucker) decomposition.

The output and the input gradient are exact; the weight gradient is formed
in the compressed space (:mod:`.hosvd_layer`).
"""
from typing import Optional, Sequence, Tuple

import torch

from .compressed_function import CompressedConv2dFunction
from .conv_geometry import ConvGeometry
from .decomposition_settings import DecompositionSettings, resolve_settings
from .hosvd_layer import (
    TUCKER_RULE,
    hosvd_layer,
    hosvd_weight_grad,
    subspace_hosvd_layer,
)
from .shared_input import SharedDecomposition
from .stats import StoredActivation
from .warm_start import WarmStart

__all__ = [
    'TUCKER_RULE', 'hosvd_conv2d', 'hosvd_conv2d_from_factors',
    'hosvd_weight_grad', 'subspace_hosvd_conv2d'
]


def hosvd_conv2d_from_factors(
        x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
        geo: ConvGeometry, core: torch.Tensor,
        factors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Convolution that stores a given Tucker form of ``x`` for backward.

    Use it when several convolutions read the same input: decompose once
    with :func:`~mmseg_hosvd.ops.hosvd` and pass the same form to each.

    Args:
        x: Input (B, C, H, W).
        weight: Weight (C', C / groups, kh, kw).
        bias: Bias or None.
        geo: Geometry.
        core: Core of ``x``.
        factors: Factors of ``x``.

    Returns:
        The exact convolution output.
    """
    return CompressedConv2dFunction.apply(x, weight, bias, geo, TUCKER_RULE,
                                          core, *factors)


def hosvd_conv2d(x: torch.Tensor,
                 weight: torch.Tensor,
                 bias: Optional[torch.Tensor],
                 geo: ConvGeometry,
                 eps: float = 0.8,
                 shared: Optional[SharedDecomposition] = None,
                 solver: str = 'auto',
                 *,
                 settings: Optional[DecompositionSettings] = None,
                 warm_start: Optional[WarmStart] = None
                 ) -> Tuple[torch.Tensor, Optional[StoredActivation]]:
    """Convolution that stores a HOSVD-eps form of its input for backward.

    When the weight needs no gradient nothing is decomposed and a plain
    convolution runs.

    Args:
        x: Input (B, C, H, W).
        weight: Weight (C', C / groups, kh, kw).
        bias: Bias or None.
        geo: Geometry (per-side zero padding).
        eps: Explained-variance threshold in (0, 1], per mode.
        shared: Cache shared with the other convolutions that read ``x``
            (same settings); the decomposition is then computed once.
        solver: How each mode finds its leading vectors, one of
            :data:`~mmseg_hosvd.ops.checks.SOLVERS` (see
            :func:`~mmseg_hosvd.ops.decomposition.hosvd`).
        settings: ``eps``, ``solver`` and the Ritz seed as one
            :class:`~mmseg_hosvd.ops.DecompositionSettings`; ``eps`` and
            ``solver`` left at their defaults defer to it, other values
            must agree with it.
        warm_start: The previous step's leading vectors of this input,
            which the Ritz solver starts from; replaced by this step's
            (see :class:`~mmseg_hosvd.ops.WarmStart`). None starts cold.

    Returns:
        ``(output, stored)``: the exact output and what was stored (None when
        nothing was decomposed; 0 elements and ``shared=True`` when another
        convolution stored the same decomposition).

    Raises:
        ValueError: For a non-4-D input, eps outside (0, 1], an unknown
            solver, settings that disagree with ``eps`` or ``solver``, or
            NaN/Inf in the input.
    """
    return hosvd_layer(x, weight, bias, geo,
                       resolve_settings(settings, eps, solver), shared,
                       warm_start)


def subspace_hosvd_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    geo: ConvGeometry,
    ranks: Sequence[int],
    previous: Optional[Sequence[Optional[torch.Tensor]]] = None,
    shared: Optional[SharedDecomposition] = None
) -> Tuple[torch.Tensor, Optional[StoredActivation], Optional[list]]:
    """Convolution storing a fixed-rank Tucker form from subspace iteration.

    Args:
        x: Input (B, C, H, W).
        weight: Weight.
        bias: Bias or None.
        geo: Geometry.
        ranks: Fixed rank per mode.
        previous: Factors of the previous step, warm start.
        shared: Cache shared with the other convolutions that read ``x``.

    Returns:
        ``(output, stored, factors)``: the exact output, what was stored and
        the factors to warm-start the next step (None when nothing was
        decomposed).
    """
    return subspace_hosvd_layer(x, weight, bias, geo, ranks, previous,
                                shared)
