"""One autograd skeleton for every layer that stores a compressed input.

The forward is the exact convolution or Linear layer (the operation is
given as a :class:`~.conv_geometry.ConvGeometry`, or None for a Linear
layer; see :mod:`.layer_operation`). It saves the weight and the tensors a
method stores instead of the input (a Tucker form, SVD factors, codes,
patch means); the backward computes the exact input gradient and the bias
gradient here, once for all methods and both operations. A method supplies
only a :class:`BackwardRule`: how its weight gradient is formed from what
it stored, and, when its input gradient is not the exact one (Gradient
Filter), how that is formed.

Dtypes: the input gradient comes back in the input's dtype and the weight
gradient in the weight's; the weight gradient is formed with autocast off,
in the dtype of the stored tensors.
"""
from typing import Any, Callable, Optional, Sequence, Tuple

import torch

from .checks import autocast_off
from .conv_geometry import ConvGeometry
from .layer_operation import (
    bias_grad,
    check_layer_input,
    exact_input_grad,
    layer_forward,
)
from .shared_input import SharedDecomposition, store_decomposition
from .stats import StoredActivation


class BackwardRule:
    """How a compressed layer's backward uses what it stored.

    For one backward the function calls :meth:`prepare` once, then
    :meth:`input_grad` when the input needs a gradient and
    :meth:`weight_grad` when the weight does, both with what
    :meth:`prepare` returned. Subclasses implement :meth:`weight_grad` and
    :meth:`ranks`; the default input gradient is the exact one. ``geo`` is
    the convolution's geometry, or None for a Linear layer.
    """

    def prepare(self, stored: Sequence[torch.Tensor],
                grad_output: torch.Tensor, geo: Optional[ConvGeometry],
                input_shape: Sequence[int]) -> Any:
        """What both gradients read, computed once with autocast off.

        Args:
            stored: The tensors the method stored.
            grad_output: Gradient of the output.
            geo: The convolution's geometry, or None.
            input_shape: Shape of the input.

        Returns:
            ``grad_output`` itself, by default.
        """
        return grad_output

    def input_grad(self, stored: Sequence[torch.Tensor], grad: Any,
                   weight: torch.Tensor, geo: Optional[ConvGeometry],
                   input_shape: Sequence[int]) -> torch.Tensor:
        """Gradient of the input; by default the exact one.

        Args:
            stored: The tensors the method stored.
            grad: What :meth:`prepare` returned.
            weight: The layer's weight.
            geo: The convolution's geometry, or None.
            input_shape: Shape of the input.

        Returns:
            The input gradient, in any floating dtype.
        """
        return exact_input_grad(input_shape, weight, grad, geo)

    def weight_grad(self, stored: Sequence[torch.Tensor], grad: Any,
                    weight_shape: Sequence[int], geo: Optional[ConvGeometry],
                    input_shape: Sequence[int]) -> torch.Tensor:
        """Gradient of the weight from what the method stored.

        Runs with autocast off.

        Args:
            stored: The tensors the method stored.
            grad: What :meth:`prepare` returned.
            weight_shape: (C', C / groups, kh, kw), or (C', C).
            geo: The convolution's geometry, or None.
            input_shape: Shape of the input.

        Returns:
            The weight gradient, in any floating dtype.
        """
        raise NotImplementedError

    def ranks(self, stored: Sequence[torch.Tensor]
              ) -> Optional[Tuple[int, ...]]:
        """The ranks reported in :class:`~.stats.StoredActivation`."""
        raise NotImplementedError


class CompressedFunction(torch.autograd.Function):
    """Exact forward; backward from a compressed input.

    ``apply(x, weight, bias, geo, rule, *stored)``, ``geo`` None for a
    Linear layer.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, geo, rule, *stored):
        out = layer_forward(x, weight, bias, geo, sliced=True)
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
            grad_b = bias_grad(grad_output, geo)
        return (grad_x, grad_w, grad_b, None, None) + (None, ) * len(stored)


class CompressedConv2dFunction(CompressedFunction):
    """:class:`CompressedFunction` of the convolutions (its own
    ``grad_fn`` name)."""


class CompressedLinearFunction(CompressedFunction):
    """:class:`CompressedFunction` of the Linear layers (its own
    ``grad_fn`` name)."""


def compressed_layer(
    x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
    geo: Optional[ConvGeometry], rule: BackwardRule,
    stored: Sequence[torch.Tensor]
) -> Tuple[torch.Tensor, StoredActivation]:
    """Exact layer that stores ``stored`` for ``rule``'s backward.

    Args:
        x: Input (B, C, H, W) of a convolution, (..., C) of a Linear layer.
        weight: Weight.
        bias: Bias or None.
        geo: The convolution's geometry, or None for a Linear layer.
        rule: How the backward uses ``stored``.
        stored: The tensors stored instead of ``x``.

    Returns:
        ``(output, size of what was stored)``.
    """
    function = (CompressedLinearFunction
                if geo is None else CompressedConv2dFunction)
    out = function.apply(x, weight, bias, geo, rule, *stored)
    numel = sum(t.numel() for t in stored)
    return out, StoredActivation(numel, rule.ranks(stored), x.numel())


def decomposed_layer(
    x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
    geo: Optional[ConvGeometry], rule: BackwardRule,
    decompose: Callable[[torch.Tensor], Sequence[torch.Tensor]],
    shared: Optional[SharedDecomposition]
) -> Tuple[torch.Tensor, Optional[StoredActivation],
           Optional[Tuple[torch.Tensor, ...]]]:
    """Layer storing a decomposition of its input, shared if asked.

    When the weight needs no gradient nothing is decomposed and the plain
    operation runs. Otherwise ``x`` is decomposed once per forward (through
    ``shared`` when several layers read it, with autocast off) and the
    decomposition is stored for ``rule``'s backward.

    Args:
        x: Input (B, C, H, W) of a convolution; (B, C), (B, N, C) or
            (B, H, W, C) of a Linear layer.
        weight: Weight.
        bias: Bias or None.
        geo: The convolution's geometry, or None for a Linear layer.
        rule: How the backward uses the decomposition.
        decompose: Returns, for ``x``, the tensors to store.
        shared: Cache shared with the other layers that read ``x``.

    Returns:
        ``(output, stored, tensors)``: the exact output, the size of what
        was stored (0 elements and ``shared=True`` when another layer
        stored the same decomposition) and the stored tensors; ``stored``
        and ``tensors`` are None when nothing was decomposed.

    Raises:
        ValueError: For an input of the wrong order or a non-floating one.
    """
    check_layer_input(x, geo)
    if not (torch.is_grad_enabled() and weight.requires_grad):
        return layer_forward(x, weight, bias, geo), None, None
    return store_decomposition(
        shared, x, decompose, lambda tensors: compressed_layer(
            x, weight, bias, geo, rule, tensors))
