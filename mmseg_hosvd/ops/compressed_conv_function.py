"""One autograd function for every convolution that stores a compressed input.

The forward is the exact convolution. It saves the weight and the tensors a
method stores instead of the input (a Tucker form, SVD factors, patch
means); the backward computes the exact input gradient and the bias
gradient here, once for all methods. A method supplies only a
:class:`BackwardRule`: how its weight gradient is formed from what it
stored, and, when its input gradient is not the exact one (Gradient
Filter), how that is formed.

Dtypes: the input gradient comes back in the input's dtype and the weight
gradient in the weight's; the weight gradient is formed with autocast off,
in the dtype of the stored tensors.
"""
from typing import Any, Callable, Optional, Sequence, Tuple

import torch

from .checks import autocast_off, check_activation
from .conv_geometry import (ConvGeometry, conv2d, conv2d_in_slices,
                            conv2d_input_grad)
from .shared_input import SharedDecomposition, store_decomposition
from .stats import StoredActivation


class BackwardRule:
    """How a compressed convolution's backward uses what it stored.

    For one backward the function calls :meth:`prepare` once, then
    :meth:`input_grad` when the input needs a gradient and
    :meth:`weight_grad` when the weight does, both with what
    :meth:`prepare` returned. Subclasses implement :meth:`weight_grad` and
    :meth:`ranks`; the default input gradient is the exact one.
    """

    def prepare(self, stored: Sequence[torch.Tensor],
                grad_output: torch.Tensor, geo: ConvGeometry,
                input_shape: Sequence[int]) -> Any:
        """What both gradients read, computed once with autocast off.

        Args:
            stored: The tensors the method stored.
            grad_output: Gradient of the output (B, C', H', W').
            geo: The convolution's geometry.
            input_shape: (B, C, H, W) of the input.

        Returns:
            ``grad_output`` itself, by default.
        """
        return grad_output

    def input_grad(self, stored: Sequence[torch.Tensor], grad: Any,
                   weight: torch.Tensor, geo: ConvGeometry,
                   input_shape: Sequence[int]) -> torch.Tensor:
        """Gradient of the input; by default the exact one.

        Args:
            stored: The tensors the method stored.
            grad: What :meth:`prepare` returned.
            weight: The convolution weight.
            geo: The convolution's geometry.
            input_shape: (B, C, H, W) of the input.

        Returns:
            The input gradient, in any floating dtype.
        """
        return conv2d_input_grad(input_shape, weight.to(grad.dtype), grad,
                                 geo)

    def weight_grad(self, stored: Sequence[torch.Tensor], grad: Any,
                    weight_shape: Sequence[int], geo: ConvGeometry,
                    input_shape: Sequence[int]) -> torch.Tensor:
        """Gradient of the weight from what the method stored.

        Runs with autocast off.

        Args:
            stored: The tensors the method stored.
            grad: What :meth:`prepare` returned.
            weight_shape: (C', C / groups, kh, kw).
            geo: The convolution's geometry.
            input_shape: (B, C, H, W) of the input.

        Returns:
            The weight gradient, in any floating dtype.
        """
        raise NotImplementedError

    def ranks(self, stored: Sequence[torch.Tensor]
              ) -> Optional[Tuple[int, ...]]:
        """The ranks reported in :class:`~.stats.StoredActivation`."""
        raise NotImplementedError


class CompressedConv2dFunction(torch.autograd.Function):
    """Exact convolution forward; backward from a compressed input.

    ``apply(x, weight, bias, geo, rule, *stored)``.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, geo, rule, *stored):
        out = conv2d_in_slices(x, weight, bias, geo)
        ctx.geo, ctx.rule = geo, rule
        ctx.input_shape = x.shape
        ctx.input_dtype = x.dtype
        ctx.has_bias = bias is not None
        ctx.save_for_backward(weight, *stored)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        weight, *stored = ctx.saved_tensors
        geo, rule, shape = ctx.geo, ctx.rule, ctx.input_shape
        grad_x = grad_w = grad_b = None
        with autocast_off(grad_output):
            grad = rule.prepare(stored, grad_output, geo, shape)
        if ctx.needs_input_grad[0]:
            grad_x = rule.input_grad(stored, grad, weight, geo,
                                     shape).to(ctx.input_dtype)
        if ctx.needs_input_grad[1]:
            with autocast_off(grad_output):
                grad_w = rule.weight_grad(stored, grad, weight.shape, geo,
                                          shape).to(weight.dtype)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_output.sum((0, 2, 3))
        return (grad_x, grad_w, grad_b, None, None) + (None, ) * len(stored)


def compressed_conv2d(
    x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
    geo: ConvGeometry, rule: BackwardRule,
    stored: Sequence[torch.Tensor]
) -> Tuple[torch.Tensor, StoredActivation]:
    """Exact convolution that stores ``stored`` for ``rule``'s backward.

    Args:
        x: Input (B, C, H, W).
        weight: Weight (C', C / groups, kh, kw).
        bias: Bias or None.
        geo: Geometry.
        rule: How the backward uses ``stored``.
        stored: The tensors stored instead of ``x``.

    Returns:
        ``(output, size of what was stored)``.
    """
    out = CompressedConv2dFunction.apply(x, weight, bias, geo, rule, *stored)
    numel = sum(t.numel() for t in stored)
    return out, StoredActivation(numel, rule.ranks(stored), x.numel())


def decomposed_conv2d(
    x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
    geo: ConvGeometry, rule: BackwardRule,
    decompose: Callable[[torch.Tensor], Sequence[torch.Tensor]],
    shared: Optional[SharedDecomposition]
) -> Tuple[torch.Tensor, Optional[StoredActivation],
           Optional[Tuple[torch.Tensor, ...]]]:
    """Convolution storing a decomposition of its input, shared if asked.

    When the weight needs no gradient nothing is decomposed and a plain
    convolution runs. Otherwise ``x`` is decomposed once per forward
    (through ``shared`` when several convolutions read it, with autocast
    off) and the decomposition is stored for ``rule``'s backward.

    Args:
        x: Input (B, C, H, W).
        weight: Weight (C', C / groups, kh, kw).
        bias: Bias or None.
        geo: Geometry.
        rule: How the backward uses the decomposition.
        decompose: Returns, for ``x``, the tensors to store.
        shared: Cache shared with the other convolutions that read ``x``.

    Returns:
        ``(output, stored, tensors)``: the exact output, the size of what
        was stored (0 elements and ``shared=True`` when another convolution
        stored the same decomposition) and the stored tensors; ``stored``
        and ``tensors`` are None when nothing was decomposed.

    Raises:
        ValueError: For a non-4-D or non-floating input.
    """
    check_activation(x)
    if not (torch.is_grad_enabled() and weight.requires_grad):
        return conv2d(x, weight, bias, geo), None, None
    return store_decomposition(
        shared, x, decompose, lambda tensors: compressed_conv2d(
            x, weight, bias, geo, rule, tensors))
