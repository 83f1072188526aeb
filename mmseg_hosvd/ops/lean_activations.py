"""Activations that keep less for backward: bit-mask ReLU, frozen BatchNorm.

* ReLU (and ReLU6) keep a packed bit mask of where the gradient passes,
  1 bit per element instead of the 32 of their output; exact.
* BatchNorm with frozen statistics is an affine map per channel: its input
  gradient needs only the scale. When its weight is trained, the weight
  gradient ``sum(g * x_hat)`` is computed from a HOSVD-eps form of its
  input; the bias gradient ``sum(g)`` is exact.
"""
from typing import Optional, Tuple

import torch

from .checks import autocast_off
from .decomposition import hosvd
from .decomposition_settings import DecompositionSettings, resolve_settings
from .dense_layout import contiguous_order
from .tensor_ops import tucker_to_tensor

_BIT_WEIGHTS = [1, 2, 4, 8, 16, 32, 64, 128]


def pack_bits(mask: torch.Tensor) -> torch.Tensor:
    """Packs a boolean tensor into uint8, 8 elements per byte."""
    flat = mask.reshape(-1)
    pad = (-flat.numel()) % 8
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    weights = torch.tensor(_BIT_WEIGHTS, dtype=torch.uint8,
                           device=mask.device)
    return (flat.view(-1, 8).to(torch.uint8) * weights).sum(
        1, dtype=torch.uint8)


def unpack_bits(packed: torch.Tensor, shape) -> torch.Tensor:
    """Inverse of :func:`pack_bits`: a boolean tensor of ``shape``."""
    shifts = torch.arange(8, dtype=torch.uint8, device=packed.device)
    bits = (packed.unsqueeze(1) >> shifts) & 1
    numel = 1
    for size in shape:
        numel *= size
    return bits.reshape(-1)[:numel].view(shape).bool()


def pack_mask(mask: torch.Tensor) -> Tuple[torch.Tensor, tuple, tuple]:
    """Packs a boolean tensor in the order its elements lie in memory.

    A channels-last mask is packed without a transposing copy, and
    :func:`unpack_mask` gives it back channels-last, so that the gradient
    it multiplies (channels-last too) is read in one order.

    Returns:
        ``(packed, shape in memory order, order)`` for :func:`unpack_mask`.
    """
    order = contiguous_order(mask)
    if order is None:
        order, mask = tuple(range(mask.ndim)), mask.contiguous()
    stored = mask.permute(order)
    return pack_bits(stored), tuple(stored.shape), order


def unpack_mask(packed: torch.Tensor, shape: tuple,
                order: tuple) -> torch.Tensor:
    """Inverse of :func:`pack_mask`, in the packed mask's layout."""
    inverse = sorted(range(len(order)), key=order.__getitem__)
    return unpack_bits(packed, shape).permute(inverse)


class _BitMaskReLUFunction(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x, upper):
        if upper is None:
            out = torch.relu(x)
            passes = x > 0
        else:
            out = x.clamp(0, upper)
            passes = (x > 0) & (x < upper)
        packed, ctx.shape, ctx.order = pack_mask(passes)
        ctx.save_for_backward(packed)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        (packed, ) = ctx.saved_tensors
        mask = unpack_mask(packed, ctx.shape, ctx.order)
        return grad_output * mask, None


def bitmask_relu(x: torch.Tensor,
                 upper: Optional[float] = None) -> torch.Tensor:
    """ReLU (``upper=None``) or ReLU6 (``upper=6``) storing a bit mask.

    Args:
        x: Input of any shape.
        upper: Clamp from above (ReLU6) or None.

    Returns:
        ``relu(x)``, or ``clamp(x, 0, upper)``; exact gradients.
    """
    if not (torch.is_grad_enabled() and x.requires_grad):
        return torch.relu(x) if upper is None else x.clamp(0, upper)
    return _BitMaskReLUFunction.apply(x, upper)


def frozen_bn_scale_shift(weight, bias, mean, var,
                          eps) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-channel scale and shift of BatchNorm with frozen statistics."""
    inv_std = torch.rsqrt(var + eps)
    scale = inv_std if weight is None else weight * inv_std
    shift = -mean * scale if bias is None else bias - mean * scale
    return scale, shift


class _FrozenBatchNormFunction(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x, weight, bias, mean, var, eps, core, *factors):
        inv_std = torch.rsqrt(var + eps)
        scale, shift = frozen_bn_scale_shift(weight, bias, mean, var, eps)
        # one full-size result, no full-size temporary
        out = torch.addcmul(
            shift.view(1, -1, 1, 1).to(x.dtype), x,
            scale.view(1, -1, 1, 1).to(x.dtype))
        ctx.eps = eps
        ctx.dtype = x.dtype
        ctx.has_weight = weight is not None
        ctx.has_bias = bias is not None
        saved = [scale.detach(), mean, inv_std.detach()]
        if core is not None:
            saved += [core] + list(factors)
        ctx.save_for_backward(*saved)
        ctx.num_factors = len(factors)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        scale, mean, inv_std, *compressed = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = (grad_output *
                      scale.view(1, -1, 1, 1).to(grad_output.dtype)).to(
                          ctx.dtype)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_output.sum((0, 2, 3))
        if ctx.has_weight and ctx.needs_input_grad[1]:
            with autocast_off(grad_output):
                core, factors = compressed[0], compressed[1:]
                x = tucker_to_tensor((core, factors))
                x_hat = (x - mean.view(1, -1, 1, 1)) * inv_std.view(
                    1, -1, 1, 1)
                grad_w = (grad_output.to(x.dtype) * x_hat).sum(
                    (0, 2, 3)).to(scale.dtype)
        return (grad_x, grad_w, grad_b, None, None, None, None) + (
            None, ) * ctx.num_factors


def frozen_batch_norm(x: torch.Tensor,
                      weight: Optional[torch.Tensor],
                      bias: Optional[torch.Tensor],
                      running_mean: torch.Tensor,
                      running_var: torch.Tensor,
                      eps: float,
                      compress_eps: float = 0.8,
                      solver: str = 'auto',
                      *,
                      settings: Optional[DecompositionSettings] = None
                      ) -> Tuple[torch.Tensor, int]:
    """BatchNorm with frozen statistics that stores little for backward.

    Args:
        x: Input (B, C, H, W).
        weight: Affine weight or None.
        bias: Affine bias or None.
        running_mean: Frozen mean.
        running_var: Frozen variance.
        eps: BatchNorm's epsilon.
        compress_eps: Explained variance of the stored input, used only
            when ``weight`` is trained.
        solver: HOSVD-eps solver of the stored input, one of
            :data:`~mmseg_hosvd.ops.checks.SOLVERS`.
        settings: ``compress_eps``, ``solver`` and the Ritz seed as one
            :class:`~mmseg_hosvd.ops.DecompositionSettings`;
            ``compress_eps`` and ``solver`` left at their defaults defer to
            it, other values must agree with it.

    Returns:
        ``(output, stored elements of the compressed input)``.

    Raises:
        ValueError: For a bad ``compress_eps`` or ``solver``, or settings
            that disagree with them.
    """
    settings = resolve_settings(settings, compress_eps, solver)
    needs = torch.is_grad_enabled() and (
        x.requires_grad or (weight is not None and weight.requires_grad)
        or (bias is not None and bias.requires_grad))
    if not needs:
        scale, shift = frozen_bn_scale_shift(weight, bias, running_mean,
                                             running_var, eps)
        return x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1), 0
    core, factors = None, []
    if weight is not None and weight.requires_grad:
        with autocast_off(x):
            core, factors = hosvd(x, settings=settings)
    out = _FrozenBatchNormFunction.apply(x, weight, bias, running_mean,
                                         running_var, eps, core, *factors)
    stored = 0 if core is None else core.numel() + sum(
        f.numel() for f in factors)
    return out, stored
