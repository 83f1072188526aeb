"""One autograd function for every Linear layer that stores a compressed input.

A Linear layer's input is a tensor of tokens whose last mode is the channel
mode: (B, C), (B, N, C) or (B, H, W, C). The forward is the exact
``F.linear``. It saves the weight and the tensors a method stores instead of
the input; the backward computes the exact input gradient ``G W`` and the
bias gradient (``G`` summed over every leading mode) here, once for all
methods. A method supplies only a :class:`LinearRule`: how its weight
gradient ``G^T X`` is formed from what it stored.

Dtypes are handled as for the convolutions
(:mod:`.compressed_conv_function`).
"""
from typing import Callable, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from .checks import autocast_off
from .shared_input import SharedDecomposition, store_decomposition
from .stats import StoredActivation

#: Input orders a compressed Linear layer accepts: (B, C), (B, N, C) and
#: (B, H, W, C).
LINEAR_ORDERS = (2, 3, 4)


def check_linear_input(x: torch.Tensor, name: str = 'input') -> None:
    """Checks that a Linear input is a floating (B, C), (B, N, C) or
    (B, H, W, C) tensor.

    Args:
        x: The tensor.
        name: How the error message calls it.

    Raises:
        ValueError: Naming the shape or dtype of a bad input.
    """
    if not isinstance(x, torch.Tensor) or x.ndim not in LINEAR_ORDERS:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x)
        raise ValueError(f'{name} of a compressed Linear layer must be a '
                         '(B, C), (B, N, C) or (B, H, W, C) tensor, got '
                         f'shape {shape}')
    if not x.is_floating_point():
        raise ValueError(f'{name} must be floating point, got {x.dtype}')


def linear_weight_grad(x: torch.Tensor,
                       grad_output: torch.Tensor) -> torch.Tensor:
    """Exact weight gradient ``G^T X`` of a Linear layer.

    Args:
        x: Input (..., C).
        grad_output: Gradient of the output (..., C').

    Returns:
        The (C', C) gradient, in the dtype of ``x``.
    """
    grad = grad_output.to(x.dtype).reshape(-1, grad_output.shape[-1])
    return grad.t() @ x.reshape(-1, x.shape[-1])


class LinearRule:
    """How a compressed Linear layer's backward uses what it stored.

    Subclasses implement :meth:`weight_grad` and :meth:`ranks`.
    """

    def weight_grad(self, stored: Sequence[torch.Tensor],
                    grad_output: torch.Tensor,
                    input_shape: Sequence[int]) -> torch.Tensor:
        """Gradient of the (C', C) weight from what the method stored.

        Runs with autocast off.

        Args:
            stored: The tensors the method stored.
            grad_output: Gradient of the output (..., C').
            input_shape: Shape of the input (..., C).

        Returns:
            The weight gradient, in any floating dtype.
        """
        raise NotImplementedError

    def ranks(self, stored: Sequence[torch.Tensor]
              ) -> Optional[Tuple[int, ...]]:
        """The ranks reported in :class:`~.stats.StoredActivation`."""
        raise NotImplementedError


class CompressedLinearFunction(torch.autograd.Function):
    """Exact ``F.linear`` forward; backward from a compressed input.

    ``apply(x, weight, bias, rule, *stored)``.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, rule, *stored):
        out = F.linear(x, weight, bias)
        ctx.rule = rule
        ctx.input_shape = x.shape
        ctx.input_dtype = x.dtype
        ctx.has_bias = bias is not None
        ctx.save_for_backward(weight, *stored)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        weight, *stored = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = (grad_output @ weight.to(grad_output.dtype)).to(
                ctx.input_dtype)
        if ctx.needs_input_grad[1]:
            with autocast_off(grad_output):
                grad_w = ctx.rule.weight_grad(stored, grad_output,
                                              ctx.input_shape).to(
                                                  weight.dtype)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_output.reshape(-1, grad_output.shape[-1]).sum(0)
        return (grad_x, grad_w, grad_b, None) + (None, ) * len(stored)


def compressed_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
    rule: LinearRule, stored: Sequence[torch.Tensor]
) -> Tuple[torch.Tensor, StoredActivation]:
    """Exact Linear layer that stores ``stored`` for ``rule``'s backward.

    Args:
        x: Input (..., C).
        weight: Weight (C', C).
        bias: Bias (C',) or None.
        rule: How the backward uses ``stored``.
        stored: The tensors stored instead of ``x``.

    Returns:
        ``(output, size of what was stored)``.
    """
    out = CompressedLinearFunction.apply(x, weight, bias, rule, *stored)
    numel = sum(t.numel() for t in stored)
    return out, StoredActivation(numel, rule.ranks(stored), x.numel())


def decomposed_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
    rule: LinearRule,
    decompose: Callable[[torch.Tensor], Sequence[torch.Tensor]],
    shared: Optional[SharedDecomposition]
) -> Tuple[torch.Tensor, Optional[StoredActivation],
           Optional[Tuple[torch.Tensor, ...]]]:
    """Linear layer storing a decomposition of its input, shared if asked.

    When the weight needs no gradient nothing is decomposed and a plain
    ``F.linear`` runs. Otherwise ``x`` is decomposed once per forward
    (through ``shared`` when several layers read it, with autocast off) and
    the decomposition is stored for ``rule``'s backward.

    Args:
        x: Input (B, C), (B, N, C) or (B, H, W, C).
        weight: Weight (C', C).
        bias: Bias or None.
        rule: How the backward uses the decomposition.
        decompose: Returns, for ``x``, the tensors to store.
        shared: Cache shared with the other layers that read ``x``.

    Returns:
        ``(output, stored, tensors)`` as
        :func:`~.compressed_conv_function.decomposed_conv2d` returns them.

    Raises:
        ValueError: For an input of another order or a non-floating input.
    """
    check_linear_input(x)
    if not (torch.is_grad_enabled() and weight.requires_grad):
        return F.linear(x, weight, bias), None, None
    return store_decomposition(
        shared, x, decompose,
        lambda tensors: compressed_linear(x, weight, bias, rule, tensors))
