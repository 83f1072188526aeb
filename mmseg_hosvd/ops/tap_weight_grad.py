"""A convolution's exact weight gradient formed one kernel tap at a time.

For kernel tap (i, j), ``dW[:, :, i, j]`` is the product of the output
gradient with the input shifted by the tap's offset, summed over the batch
and the output positions: one matrix product per tap over the output
positions whose shifted input lies inside the image (zero padding adds
nothing). The transient is one tap's slices of the input and of the output
gradient. PyTorch's CPU weight-gradient kernel instead holds a workspace
that does not shrink with the batch (18 MB for a 512-to-128-channel 3 x 3
convolution of dilation 12 on a 16 x 16 map, for one sample as for eight),
which set the backward's peak of the layers that rebuild their input a
batch slice at a time. A tap that reads only padding (a dilation larger
than the map, as in ASPP's wide branches at small crops) costs nothing.
"""
from typing import Optional, Sequence, Tuple

import torch

from .conv_geometry import ConvGeometry


def _valid_outputs(out_size: int, in_size: int, stride: int,
                   offset: int) -> Tuple[int, int]:
    """Output positions ``[lo, hi)`` whose input ``y * stride + offset``
    lies in ``[0, in_size)``."""
    lo = max(0, -(offset // stride))
    hi = min(out_size, (in_size - 1 - offset) // stride + 1)
    return lo, hi


def conv2d_weight_grad_by_taps(x: torch.Tensor, weight_shape: Sequence[int],
                               grad_output: torch.Tensor, geo: ConvGeometry,
                               out: Optional[torch.Tensor] = None
                               ) -> torch.Tensor:
    """Exact weight gradient of a convolution, one kernel tap at a time.

    Args:
        x: The unpadded input (B, C, H, W), any memory layout.
        weight_shape: (C', C / groups, kh, kw).
        grad_output: Gradient of the output (B, C', H', W').
        geo: The convolution's geometry (per-side padding, stride,
            dilation, groups).
        out: A contiguous tensor of ``weight_shape`` and the dtype of ``x``
            to add the gradient to (the sum over batch slices), or None.

    Returns:
        The weight gradient in the dtype of ``x``: ``out`` with the
        gradient added, or a new tensor.
    """
    height, width = x.shape[-2:]
    out_channels, group_channels, kh, kw = weight_shape
    groups = geo.groups
    _, _, out_h, out_w = grad_output.shape
    top, _, left, _ = geo.padding
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    if out is None:
        out = x.new_zeros(tuple(weight_shape))
    by_group = out.view(groups, out_channels // groups, group_channels, kh,
                        kw)
    xg = x.unflatten(1, (groups, group_channels))
    gg = grad_output.to(x.dtype).unflatten(1, (groups, -1))
    for i in range(kh):
        y0, y1 = _valid_outputs(out_h, height, sh, i * dh - top)
        for j in range(kw):
            x0, x1 = _valid_outputs(out_w, width, sw, j * dw - left)
            if y1 <= y0 or x1 <= x0:
                continue
            iy, ix = y0 * sh + i * dh - top, x0 * sw + j * dw - left
            shifted = xg[..., iy:iy + (y1 - y0 - 1) * sh + 1:sh,
                         ix:ix + (x1 - x0 - 1) * sw + 1:sw]
            by_group[..., i, j] += torch.bmm(
                _rows(gg[..., y0:y1, x0:x1]),
                _rows(shifted).transpose(1, 2))
    return out


def _rows(tap: torch.Tensor) -> torch.Tensor:
    """A tap's slice (B, G, C, h, w) as (G, C, B * h * w): one copy whose
    rows are contiguous, which the matrix product reads as it is (its
    transpose without a copy)."""
    groups, channels = tap.shape[1:3]
    return tap.movedim(0, 2).reshape(groups, channels, -1)
