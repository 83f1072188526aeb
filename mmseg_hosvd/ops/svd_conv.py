"""Convolution storing a truncated SVD of its (B, C H W) input matrix."""
from typing import Optional, Tuple

import torch

from .checks import autocast_off, check_activation
from .conv_geometry import (
    ConvGeometry,
    conv2d,
    conv2d_input_grad,
    conv2d_weight_grad,
)
from .decomposition import check_eps, truncated_svd
from .shared_input import SharedDecomposition, decompose_once
from .stats import StoredActivation


class _SVDConv2dFunction(torch.autograd.Function):
    """Exact forward; backward rebuilds the input from U (B, k), P (k, CHW)."""

    @staticmethod
    def forward(ctx, x, weight, bias, geo, left, right):
        out = conv2d(x, weight, bias, geo)
        ctx.geo = geo
        ctx.input_shape = x.shape
        ctx.input_dtype = x.dtype
        ctx.has_bias = bias is not None
        ctx.save_for_backward(weight, left, right)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        weight, left, right = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = conv2d_input_grad(ctx.input_shape,
                                       weight.to(grad_output.dtype),
                                       grad_output, ctx.geo).to(
                                           ctx.input_dtype)
        if ctx.needs_input_grad[1]:
            with autocast_off(grad_output):
                rebuilt = (left @ right).reshape(ctx.input_shape)
                grad_w = conv2d_weight_grad(rebuilt, weight.shape,
                                            grad_output.to(rebuilt.dtype),
                                            ctx.geo).to(weight.dtype)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_output.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None, None, None


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
    check_activation(x)
    eps = check_eps(eps)
    if not (torch.is_grad_enabled() and weight.requires_grad):
        return conv2d(x, weight, bias, geo), None

    def decompose():
        with autocast_off(x):
            u, s, vh = truncated_svd(x.detach().reshape(x.shape[0], -1),
                                     eps=eps)
            return u, (s.unsqueeze(1) * vh).contiguous()

    (left, right), first = decompose_once(shared, x, decompose)
    out = _SVDConv2dFunction.apply(x, weight, bias, geo, left, right)
    stored = StoredActivation(left.numel() + right.numel(),
                              (left.shape[1], ), x.numel())
    return out, stored if first else stored._replace(numel=0, shared=True)
