"""Convolution whose input is stored as a HOSVD (Tucker) decomposition.

The output and the input gradient are exact. The weight gradient is computed
in the compressed space (see docs/design.md): the output gradient is projected
on the batch factor, the core is expanded along height and width only, a weight
gradient is taken against the still-compressed channels, and the channel factor
maps it back to the input channels of each group.

Zero padding: the part that both sides of an axis share is left to the weight
gradient's own padding, and only what one side has beyond the other becomes
zero rows of U2 or U3. Padding the factors in full would expand the core to the
padded size, which for dilated convolutions on small maps (DeepLabV3's ASPP:
dilation 36 on 16 x 16) is 30x the input.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from .compressed_conv_function import (
    BackwardRule,
    CompressedConv2dFunction,
    decomposed_conv2d,
)
from .conv_geometry import ConvGeometry
from .decomposition import hosvd
from .decomposition_settings import DecompositionSettings, resolve_settings
from .warm_start import WarmStart
from .shared_input import SharedDecomposition
from .stats import StoredActivation
from .subspace import subspace_hosvd
from .tensor_ops import multi_mode_dot


def hosvd_weight_grad(core: torch.Tensor, factors: Sequence[torch.Tensor],
                      grad_output: torch.Tensor, weight_shape: Sequence[int],
                      geo: ConvGeometry) -> torch.Tensor:
    """Weight gradient of a convolution from the Tucker form of its input.

    Args:
        core: Core (K0, K1, K2, K3) of the input.
        factors: U0 (B, K0), U1 (C, K1), U2 (H, K2), U3 (W, K3).
        grad_output: Gradient of the output (B, C', H', W').
        weight_shape: (C', C / groups, kh, kw).
        geo: The convolution's geometry.

    Returns:
        The weight gradient, in the dtype of ``core``.
    """
    out_channels, in_per_group, kh, kw = weight_shape
    if core.numel() == 0:
        return core.new_zeros(weight_shape)
    if _is_pointwise(weight_shape, geo):
        return _pointwise_weight_grad(core, factors, grad_output,
                                      weight_shape)
    u0, u1, u2, u3 = factors
    top, bottom, left, right = geo.padding
    shared_rows, shared_cols = min(top, bottom), min(left, right)
    z1 = torch.tensordot(u0, grad_output.to(core.dtype), dims=([0], [0]))
    u2p = F.pad(u2, (0, 0, top - shared_rows, bottom - shared_rows))
    u3p = F.pad(u3, (0, 0, left - shared_cols, right - shared_cols))
    expanded = multi_mode_dot(core, [u2p, u3p], modes=[2, 3])
    z4 = torch.nn.grad.conv2d_weight(expanded,
                                     (out_channels, core.shape[1], kh, kw),
                                     z1, geo.stride,
                                     (shared_rows, shared_cols),
                                     geo.dilation, 1)
    groups = geo.groups
    z4 = z4.reshape(groups, out_channels // groups, core.shape[1], kh, kw)
    u1 = u1.reshape(groups, in_per_group, core.shape[1])
    grad = torch.einsum('gokxy,gck->gocxy', z4, u1)
    return grad.reshape(weight_shape)


def _is_pointwise(weight_shape: Sequence[int], geo: ConvGeometry) -> bool:
    """A 1 x 1, stride-1, unpadded, ungrouped convolution."""
    return (tuple(weight_shape[2:]) == (1, 1) and geo.stride == (1, 1)
            and geo.padding == (0, 0, 0, 0) and geo.groups == 1)


def _pointwise_weight_grad(core: torch.Tensor,
                           factors: Sequence[torch.Tensor],
                           grad_output: torch.Tensor,
                           weight_shape: Sequence[int]) -> torch.Tensor:
    """:func:`hosvd_weight_grad` of a pointwise convolution.

    Its weight gradient is ``sum over (b, h, w) of g x^T``, so the output
    gradient is projected on U0, U2 and U3 (to K0 x C' x K2 x K3), met
    with the core (to C' x K1) and mapped back by U1: the core is never
    expanded to the image size.
    """
    u0, u1, u2, u3 = factors
    projected = multi_mode_dot(grad_output.to(core.dtype), [u0, u2, u3],
                               modes=[0, 2, 3], transpose=True)
    small = torch.einsum('aokl,ajkl->oj', projected, core)
    return (small @ u1.t()).reshape(weight_shape)


class TuckerRule(BackwardRule):
    """Backward from a stored Tucker form ``(core, U0, U1, U2, U3)``."""

    def weight_grad(self, stored, grad, weight_shape, geo, input_shape):
        """:func:`hosvd_weight_grad` of the stored form."""
        core, *factors = stored
        return hosvd_weight_grad(core, factors, grad, weight_shape, geo)

    def ranks(self, stored):
        """The core's shape: one rank per mode."""
        return tuple(stored[0].shape)


#: The rule of every convolution that stores a Tucker form.
TUCKER_RULE = TuckerRule()


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
    settings = resolve_settings(settings, eps, solver)

    def decompose(tensor):
        core, factors = hosvd(tensor, settings=settings,
                              warm_start=warm_start)
        return (core, *factors)

    out, stored, _ = decomposed_conv2d(x, weight, bias, geo, TUCKER_RULE,
                                       decompose, shared)
    return out, stored


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

    def decompose(tensor):
        core, factors = subspace_hosvd(tensor, ranks, previous)
        return (core, *factors)

    out, stored, tensors = decomposed_conv2d(x, weight, bias, geo,
                                             TUCKER_RULE, decompose, shared)
    return out, stored, None if tensors is None else list(tensors[1:])
