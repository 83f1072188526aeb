"""Convolutions and Linear layers whose input is stored as a Tucker form.

The output and the input gradient are exact. The weight gradient is computed
in the compressed space (see docs/design.md), the input is never rebuilt.

Convolution: the output gradient is projected on the batch factor, the core
is expanded along height and width only, a weight gradient is taken against
the still-compressed channels, and the channel factor maps it back to the
input channels of each group. Zero padding: the part that both sides of an
axis share is left to the weight gradient's own padding, and only what one
side has beyond the other becomes zero rows of U2 or U3. Padding the factors
in full would expand the core to the padded size, which for dilated
convolutions on small maps (DeepLabV3's ASPP: dilation 36 on 16 x 16) is 30x
the input.

Linear layer: the input (B, C), (B, N, C) or (B, H, W, C) is decomposed as a
tensor of as many modes, the channel mode last. The output gradient is
projected on the factors of every mode but the channel mode, contracted with
the core, and the channel factor maps the result back to the input channels.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from .compressed_function import BackwardRule, decomposed_layer
from .conv_geometry import ConvGeometry
from .decomposition import hosvd
from .decomposition_settings import DecompositionSettings
from .shared_input import SharedDecomposition
from .stats import StoredActivation
from .subspace import subspace_hosvd
from .tensor_ops import multi_mode_dot
from .warm_start import WarmStart


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


def hosvd_linear_weight_grad(core: torch.Tensor,
                             factors: Sequence[torch.Tensor],
                             grad_output: torch.Tensor) -> torch.Tensor:
    """Weight gradient of a Linear layer from the Tucker form of its input.

    Args:
        core: Core (K0, ..., Kc) of the input, the channel mode last.
        factors: One factor (I_j, K_j) per mode, the channel factor
            (C, Kc) last.
        grad_output: Gradient of the output, the input's shape with C'
            channels.

    Returns:
        The (C', C) weight gradient, in the dtype of ``core``.
    """
    *leading, channel = factors
    modes = list(range(len(leading)))
    if core.numel() == 0:
        return core.new_zeros(grad_output.shape[-1], channel.shape[0])
    projected = multi_mode_dot(grad_output.to(core.dtype), leading,
                               modes=modes, transpose=True)
    # (K0, ..., C') with the core (K0, ..., Kc) -> (C', Kc)
    small = torch.tensordot(projected, core, dims=(modes, modes))
    return small @ channel.t()


class TuckerRule(BackwardRule):
    """Backward from a stored Tucker form ``(core, U0, ..., Uc)``."""

    def weight_grad(self, stored, grad, weight_shape, geo, input_shape):
        """:func:`hosvd_weight_grad` (convolution) or
        :func:`hosvd_linear_weight_grad` (Linear layer) of the stored form."""
        core, *factors = stored
        if geo is None:
            return hosvd_linear_weight_grad(core, factors, grad)
        return hosvd_weight_grad(core, factors, grad, weight_shape, geo)

    def ranks(self, stored):
        """The core's shape: one rank per mode."""
        return tuple(stored[0].shape)


#: The rule of every layer that stores a Tucker form.
TUCKER_RULE = TuckerRule()


def hosvd_layer(
    x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
    geo: Optional[ConvGeometry], settings: DecompositionSettings,
    shared: Optional[SharedDecomposition] = None,
    warm_start: Optional[WarmStart] = None
) -> Tuple[torch.Tensor, Optional[StoredActivation]]:
    """Layer that stores a HOSVD-eps form of its input for backward.

    What :func:`~.hosvd_conv.hosvd_conv2d` and
    :func:`~.hosvd_linear.hosvd_linear` run, with ``settings`` resolved and
    ``geo`` None for a Linear layer.
    """

    def decompose(tensor):
        core, factors = hosvd(tensor, settings=settings,
                              warm_start=warm_start,
                              channel_mode=1 if geo is not None else
                              tensor.ndim - 1)
        return (core, *factors)

    out, stored, _ = decomposed_layer(x, weight, bias, geo, TUCKER_RULE,
                                      decompose, shared)
    return out, stored


def subspace_hosvd_layer(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    geo: Optional[ConvGeometry],
    ranks: Sequence[int],
    previous: Optional[Sequence[Optional[torch.Tensor]]] = None,
    shared: Optional[SharedDecomposition] = None
) -> Tuple[torch.Tensor, Optional[StoredActivation], Optional[list]]:
    """Layer storing a fixed-rank Tucker form from subspace iteration.

    What :func:`~.hosvd_conv.subspace_hosvd_conv2d` and
    :func:`~.hosvd_linear.subspace_hosvd_linear` run, ``geo`` None for a
    Linear layer.
    """

    def decompose(tensor):
        core, factors = subspace_hosvd(tensor, ranks, previous)
        return (core, *factors)

    out, stored, tensors = decomposed_layer(x, weight, bias, geo,
                                            TUCKER_RULE, decompose, shared)
    return out, stored, None if tensors is None else list(tensors[1:])
