"""The operation of a compressed layer: a convolution or a Linear layer.

Every compressed layer runs through one autograd skeleton
(:mod:`.compressed_function`) parameterised by its operation, given as a
:class:`~.conv_geometry.ConvGeometry` for a convolution and None for a
Linear layer. The functions here are the exact forward, input, weight and
bias gradients of either operation.

A Linear layer's input is a tensor of tokens whose last mode is the channel
mode: (B, C), (B, N, C) or (B, H, W, C).
"""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from .checks import check_activation
from .conv_geometry import (
    ConvGeometry,
    conv2d,
    conv2d_in_slices,
    conv2d_input_grad,
    conv2d_weight_grad,
)

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


def check_layer_input(x: torch.Tensor, geo: Optional[ConvGeometry]) -> None:
    """Checks a convolution's (``geo`` given) or a Linear layer's input.

    Raises:
        ValueError: Naming the shape or dtype of a bad input.
    """
    if geo is None:
        check_linear_input(x)
    else:
        check_activation(x)


def layer_forward(x: torch.Tensor, weight: torch.Tensor,
                  bias: Optional[torch.Tensor], geo: Optional[ConvGeometry],
                  sliced: bool = False) -> torch.Tensor:
    """The exact output of the operation.

    Args:
        x: Input.
        weight: Weight.
        bias: Bias or None.
        geo: The convolution's geometry, or None for a Linear layer.
        sliced: Whether a convolution runs in batch slices (see
            :func:`~.conv_geometry.conv2d_in_slices`).

    Returns:
        The output.
    """
    if geo is None:
        return F.linear(x, weight, bias)
    if sliced:
        return conv2d_in_slices(x, weight, bias, geo)
    return conv2d(x, weight, bias, geo)


def exact_input_grad(input_shape: Sequence[int], weight: torch.Tensor,
                     grad_output: torch.Tensor,
                     geo: Optional[ConvGeometry]) -> torch.Tensor:
    """Exact input gradient, in the dtype of ``grad_output``.

    Args:
        input_shape: Shape of the input.
        weight: The layer's weight.
        grad_output: Gradient of the output.
        geo: The convolution's geometry, or None for a Linear layer.
    """
    weight = weight.to(grad_output.dtype)
    if geo is None:
        return grad_output @ weight
    return conv2d_input_grad(input_shape, weight, grad_output, geo)


def exact_weight_grad(x: torch.Tensor, weight_shape: Sequence[int],
                      grad_output: torch.Tensor,
                      geo: Optional[ConvGeometry]) -> torch.Tensor:
    """Exact weight gradient of the input ``x``, in the dtype of ``x``.

    ``weight_shape`` is read by a convolution only; ``geo`` is None for a
    Linear layer.
    """
    grad_output = grad_output.to(x.dtype)
    if geo is None:
        return linear_weight_grad(x, grad_output)
    return conv2d_weight_grad(x, weight_shape, grad_output, geo)


def bias_grad(grad_output: torch.Tensor,
              geo: Optional[ConvGeometry]) -> torch.Tensor:
    """Bias gradient: ``grad_output`` summed over all but the channels."""
    if geo is None:
        return grad_output.reshape(-1, grad_output.shape[-1]).sum(0)
    return grad_output.sum((0, 2, 3))
