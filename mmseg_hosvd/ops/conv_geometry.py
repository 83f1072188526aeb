"""Convolution geometry with per-side zero padding, and its exact gradients."""
import math
from typing import Callable, NamedTuple, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

IntPair = Union[int, Sequence[int]]


def _pair(value: IntPair, name: str) -> Tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) for v in pair):
        raise ValueError(f'{name} must be an int or a pair of ints, '
                         f'got {value!r}')
    return pair


class ConvGeometry(NamedTuple):
    """Stride, per-side zero padding, dilation and groups of a 2-D convolution.

    Attributes:
        stride: (sh, sw).
        padding: (top, bottom, left, right) zero padding.
        dilation: (dh, dw).
        groups: Number of groups.
    """
    stride: Tuple[int, int]
    padding: Tuple[int, int, int, int]
    dilation: Tuple[int, int]
    groups: int

    @classmethod
    def make(cls,
             stride: IntPair = 1,
             padding: Union[int, Sequence[int]] = 0,
             dilation: IntPair = 1,
             groups: int = 1) -> 'ConvGeometry':
        """Builds a geometry from ``nn.Conv2d``-style arguments.

        Args:
            stride: Int or (sh, sw).
            padding: Int, (ph, pw) or (top, bottom, left, right).
            dilation: Int or (dh, dw).
            groups: Number of groups.

        Returns:
            The geometry.
        """
        if isinstance(padding, int):
            padding = (padding, ) * 4
        padding = tuple(padding)
        if len(padding) == 2:
            padding = (padding[0], padding[0], padding[1], padding[1])
        if len(padding) != 4 or not all(
                isinstance(p, int) and p >= 0 for p in padding):
            raise ValueError('padding must be a non-negative int, pair or '
                             f'(top, bottom, left, right), got {padding!r}')
        stride = _pair(stride, 'stride')
        dilation = _pair(dilation, 'dilation')
        if min(stride) < 1 or min(dilation) < 1 or groups < 1:
            raise ValueError(f'stride, dilation and groups must be >= 1, got '
                             f'{stride}, {dilation}, {groups}')
        return cls(stride, padding, dilation, groups)

    @classmethod
    def of(cls, conv: nn.Conv2d) -> 'ConvGeometry':
        """Geometry of an ``nn.Conv2d``, resolving 'same' and 'valid'.

        Args:
            conv: The convolution; its ``padding_mode`` must be 'zeros'.

        Returns:
            The geometry, with 'same' padding split per side as torch does.
        """
        padding = conv.padding
        if padding == 'valid':
            padding = 0
        elif padding == 'same':
            sides = []
            for dilation, kernel in zip(conv.dilation, conv.kernel_size,
                                        strict=True):
                total = dilation * (kernel - 1)
                sides += [total // 2, total - total // 2]
            padding = tuple(sides)
        return cls.make(conv.stride, padding, conv.dilation, conv.groups)

    @property
    def symmetric(self) -> bool:
        """Whether the padding is the same on both sides of each axis."""
        top, bottom, left, right = self.padding
        return top == bottom and left == right

    def conv_padding(self) -> Tuple[int, int]:
        """Padding to pass to ``F.conv2d`` after :meth:`pad` was applied."""
        return (self.padding[0], self.padding[2]) if self.symmetric else (0,
                                                                          0)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """Pads ``x`` explicitly when the padding is asymmetric."""
        if self.symmetric:
            return x
        top, bottom, left, right = self.padding
        return F.pad(x, (left, right, top, bottom))

    def output_size(self, input_size: Sequence[int],
                    kernel_size: Sequence[int]) -> Tuple[int, int]:
        """Output (H', W') for an input (H, W) and a kernel (kh, kw)."""
        height, width = self.padded_size(*input_size)
        return tuple((size - dil * (k - 1) - 1) // s + 1
                     for size, k, s, dil in zip((height, width), kernel_size,
                                                self.stride, self.dilation,
                                                strict=True))

    def padded_size(self, height: int, width: int) -> Tuple[int, int]:
        """Input size after zero padding."""
        top, bottom, left, right = self.padding
        return height + top + bottom, width + left + right


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias, geo: ConvGeometry):
    """``F.conv2d`` with the geometry's per-side padding."""
    return F.conv2d(geo.pad(x), weight, bias, geo.stride, geo.conv_padding(),
                    geo.dilation, geo.groups)


#: Convolutions of larger tensors run in batch slices of at most this size.
SLICE_BYTES = 16 * 2**20


def in_batch_slices(function: Callable[[torch.Tensor], torch.Tensor],
                    tensor: torch.Tensor, image_bytes: int) -> torch.Tensor:
    """``function(tensor)`` computed on batch slices, into one output.

    The CPU convolution kernels copy whole operands (a reordered input, a
    padded copy, the transposed convolution's buffer), each as large as an
    activation: for the 80 MB input of DeepLabV3's bottleneck at
    512 x 512, batch 8, such a copy sets the step's peak once the input
    itself is stored compressed. On slices of at most :data:`SLICE_BYTES`
    (at least one image) the copies are a slice's. Each image's result is
    computed as in one call; not for use under autograd (it writes into
    the output).

    Args:
        function: Maps a batch to a batch, image by image.
        tensor: The batch.
        image_bytes: The larger of one image's input and output, in bytes.

    Returns:
        ``function(tensor)``.
    """
    step = max(1, SLICE_BYTES // max(image_bytes, 1))
    if step >= tensor.shape[0]:
        return function(tensor)
    out = None
    for start in range(0, tensor.shape[0], step):
        piece = function(tensor[start:start + step])
        if out is None:
            out = torch.empty((tensor.shape[0], ) + tuple(piece.shape[1:]),
                              dtype=piece.dtype, device=piece.device,
                              memory_format=_layout_of(piece))
        out[start:start + piece.shape[0]] = piece
        del piece
    return out


def _layout_of(tensor: torch.Tensor) -> torch.memory_format:
    """Channels-last for a 4-D tensor stored so (a convolution on one
    keeps it), else contiguous: slices are then assembled without a
    transposing copy."""
    if (tensor.dim() == 4 and not tensor.is_contiguous()
            and tensor.is_contiguous(memory_format=torch.channels_last)):
        return torch.channels_last
    return torch.contiguous_format


def conv2d_in_slices(x: torch.Tensor, weight: torch.Tensor, bias,
                     geo: ConvGeometry) -> torch.Tensor:
    """:func:`conv2d` in batch slices (see :func:`in_batch_slices`)."""
    return in_batch_slices(lambda part: conv2d(part, weight, bias, geo), x,
                           x[0].numel() * x.element_size() if len(x) else 0)


def conv2d_input_grad(input_shape: Sequence[int], weight: torch.Tensor,
                      grad_output: torch.Tensor,
                      geo: ConvGeometry) -> torch.Tensor:
    """Exact gradient of a convolution with respect to its input.

    Args:
        input_shape: (B, C, H, W) of the unpadded input.
        weight: Convolution weight (C', C / groups, kh, kw).
        grad_output: Gradient of the output (B, C', H', W').
        geo: The geometry.

    Returns:
        Gradient of shape ``input_shape``.
    """
    if _is_pointwise(weight, geo):
        return _pointwise_input_grad(weight, grad_output)
    # The transposed convolution, not torch.nn.grad.conv2d_input: that one
    # hands convolution_backward an expanded dummy input, which the CPU
    # kernel materialises (two more input-sized buffers at the peak).
    image_bytes = math.prod(input_shape[1:]) * grad_output.element_size()
    return in_batch_slices(
        lambda part: _transposed_conv(input_shape, weight, part, geo),
        grad_output, image_bytes)


def _is_pointwise(weight: torch.Tensor, geo: ConvGeometry) -> bool:
    """A 1 x 1, stride-1, unpadded, ungrouped convolution: a matrix
    product over channels."""
    return (tuple(weight.shape[2:]) == (1, 1) and geo.stride == (1, 1)
            and geo.padding == (0, 0, 0, 0) and geo.groups == 1)


def _pointwise_input_grad(weight: torch.Tensor,
                          grad_output: torch.Tensor) -> torch.Tensor:
    """The input gradient of a pointwise convolution as one matrix product.

    The CPU transposed-convolution kernel takes a slow, copying path for
    1 x 1 kernels (111 ms against about 55 for the product, SegFormer-B0's
    1024-channel fusion convolution at batch 8, 128 x 128, one core). A
    channels-last gradient gives a channels-last result, read and written
    where it lies.
    """
    matrix = weight.reshape(weight.shape[0], weight.shape[1])
    if _layout_of(grad_output) == torch.channels_last:
        pixels = grad_output.permute(0, 2, 3, 1)
        return (pixels @ matrix).permute(0, 3, 1, 2)
    batch, _, height, width = grad_output.shape
    grad = grad_output.new_empty(batch, matrix.shape[1], height, width)
    for image, target in zip(grad_output, grad, strict=True):
        torch.mm(matrix.t(), image.reshape(matrix.shape[0], -1),
                 out=target.view(matrix.shape[1], -1))
    return grad


def _transposed_conv(input_shape: Sequence[int], weight: torch.Tensor,
                     grad_output: torch.Tensor,
                     geo: ConvGeometry) -> torch.Tensor:
    height, width = input_shape[2:]
    if geo.symmetric:
        size, padding = (height, width), geo.conv_padding()
    else:
        size, padding = geo.padded_size(height, width), (0, 0)
    kernel = weight.shape[2:]
    output_padding = tuple(
        target - ((out - 1) * s - 2 * p + d * (k - 1) + 1)
        for target, out, s, p, d, k in zip(size, grad_output.shape[2:],
                                            geo.stride, padding,
                                            geo.dilation, kernel, strict=True))
    grad = F.conv_transpose2d(grad_output, weight, None, geo.stride,
                              padding, output_padding, geo.groups,
                              geo.dilation)
    if geo.symmetric:
        return grad
    top, _, left, _ = geo.padding
    return grad[:, :, top:top + height, left:left + width]


def conv2d_weight_grad(x: torch.Tensor, weight_shape: Sequence[int],
                       grad_output: torch.Tensor,
                       geo: ConvGeometry) -> torch.Tensor:
    """Exact gradient of a convolution with respect to its weight.

    Args:
        x: The (unpadded) input.
        weight_shape: (C', C / groups, kh, kw).
        grad_output: Gradient of the output.
        geo: The geometry.

    Returns:
        Gradient of shape ``weight_shape``.
    """
    return torch.nn.grad.conv2d_weight(geo.pad(x), tuple(weight_shape),
                                       grad_output, geo.stride,
                                       geo.conv_padding(), geo.dilation,
                                       geo.groups)
