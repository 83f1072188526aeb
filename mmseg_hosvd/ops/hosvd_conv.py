"""Convolution whose input is stored as a HOSVD (Tucker) decomposition.

The output and the input gradient are exact. The weight gradient is computed
in the compressed space (DESIGN.md section 2): the output gradient is projected
on the batch factor, the core is expanded along height and width only (with
zero rows in the factors for the padding, per side), a weight gradient is taken
against the still-compressed channels, and the channel factor maps it back to
the input channels of each group.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from .checks import autocast_off, check_activation
from .conv_geometry import ConvGeometry, conv2d, conv2d_input_grad
from .decomposition import check_eps, check_solver, hosvd
from .shared_input import SharedDecomposition, decompose_once
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
    u0, u1, u2, u3 = factors
    top, bottom, left, right = geo.padding
    z1 = torch.tensordot(u0, grad_output.to(core.dtype), dims=([0], [0]))
    u2p = F.pad(u2, (0, 0, top, bottom))
    u3p = F.pad(u3, (0, 0, left, right))
    expanded = multi_mode_dot(core, [u2p, u3p], modes=[2, 3])
    z4 = torch.nn.grad.conv2d_weight(expanded,
                                     (out_channels, core.shape[1], kh, kw),
                                     z1, geo.stride, 0, geo.dilation, 1)
    groups = geo.groups
    z4 = z4.reshape(groups, out_channels // groups, core.shape[1], kh, kw)
    u1 = u1.reshape(groups, in_per_group, core.shape[1])
    grad = torch.einsum('gokxy,gck->gocxy', z4, u1)
    return grad.reshape(weight_shape)


class _HOSVDConv2dFunction(torch.autograd.Function):
    """Exact convolution forward; backward from a stored Tucker form."""

    @staticmethod
    def forward(ctx, x, weight, bias, geo, core, *factors):
        out = conv2d(x, weight, bias, geo)
        ctx.geo = geo
        ctx.input_shape = x.shape
        ctx.input_dtype = x.dtype
        ctx.has_bias = bias is not None
        ctx.save_for_backward(weight, core, *factors)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        weight, core, *factors = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = conv2d_input_grad(ctx.input_shape,
                                       weight.to(grad_output.dtype),
                                       grad_output, ctx.geo).to(
                                           ctx.input_dtype)
        if ctx.needs_input_grad[1]:
            with autocast_off(grad_output):
                grad_w = hosvd_weight_grad(core, factors, grad_output,
                                           weight.shape,
                                           ctx.geo).to(weight.dtype)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_output.sum((0, 2, 3))
        return (grad_x, grad_w, grad_b, None, None) + (None, ) * len(factors)


def hosvd_stored(core: torch.Tensor, factors: Sequence[torch.Tensor],
                 input_numel: int) -> StoredActivation:
    """Stored size of a Tucker form: the core plus every factor."""
    numel = core.numel() + sum(f.numel() for f in factors)
    return StoredActivation(numel, tuple(core.shape), input_numel)


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
    return _HOSVDConv2dFunction.apply(x, weight, bias, geo, core, *factors)


def hosvd_conv2d(x: torch.Tensor,
                 weight: torch.Tensor,
                 bias: Optional[torch.Tensor],
                 geo: ConvGeometry,
                 eps: float = 0.8,
                 shared: Optional[SharedDecomposition] = None,
                 solver: str = 'auto'
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
            (same eps); the decomposition is then computed once.
        solver: How large modes find their leading vectors, 'auto' or
            'eigh' (see :func:`~mmseg_hosvd.ops.decomposition.hosvd`).

    Returns:
        ``(output, stored)``: the exact output and what was stored (None when
        nothing was decomposed; 0 elements and ``shared=True`` when another
        convolution stored the same decomposition).

    Raises:
        ValueError: For a non-4-D input, eps outside (0, 1], an unknown
            solver, or NaN/Inf in the input.
    """
    check_activation(x)
    eps = check_eps(eps)
    check_solver(solver)
    if not (torch.is_grad_enabled() and weight.requires_grad):
        return conv2d(x, weight, bias, geo), None

    def decompose():
        with autocast_off(x):
            return hosvd(x, eps=eps, solver=solver)

    (core, factors), first = decompose_once(shared, x, decompose)
    out = hosvd_conv2d_from_factors(x, weight, bias, geo, core, factors)
    stored = hosvd_stored(core, factors, x.numel())
    return out, stored if first else stored._replace(numel=0, shared=True)


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
    check_activation(x)
    if not (torch.is_grad_enabled() and weight.requires_grad):
        return conv2d(x, weight, bias, geo), None, None

    def decompose():
        with autocast_off(x):
            return subspace_hosvd(x, ranks, previous)

    (core, factors), first = decompose_once(shared, x, decompose)
    out = hosvd_conv2d_from_factors(x, weight, bias, geo, core, factors)
    stored = hosvd_stored(core, factors, x.numel())
    if not first:
        stored = stored._replace(numel=0, shared=True)
    return out, stored, factors
