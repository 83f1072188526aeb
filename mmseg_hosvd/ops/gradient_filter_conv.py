"""Gradient Filter (Yang et al., CVPR 2023): r x r patch-constant gradients.

The output grid is cut into r x r patches (the last row and column of patches
may be smaller). Output patch (p, q) covers output rows [p r, p r + r) and
columns [q r, q r + r); its input patch is the same region scaled by the
stride, input rows [p r s, p r s + r s), the last patch reaching the border.
Forward stores the mean of the input over each input patch. Backward takes
the sum of the output gradient over each output patch and forms:

* the weight gradient
  ``dW[o, c, i, j] = sum_{b,P} Gsum[b, o, P] Xmean[b, c, P]``,
  the same for every kernel tap ``(i, j)``;
* the input gradient, constant over each input patch:
  ``dX[b, c, P] = sum_o Gsum[b, o, P] sum_ij W[o, c, i, j] / n_in(P)``.

With r = 1, stride 1 and a 1 x 1 kernel without padding both are exact.
"""
from typing import Optional, Tuple

import torch

from .checks import autocast_off, check_activation, check_int_at_least
from .compressed_function import BackwardRule, compressed_layer
from .conv_geometry import ConvGeometry, conv2d
from .spectrum import decomposition_dtype
from .stats import StoredActivation


def check_radius(radius: int) -> int:
    """Validates a Gradient Filter patch size.

    Args:
        radius: Patch size r, an int >= 1.

    Returns:
        ``radius``.

    Raises:
        ValueError: If ``radius`` is not an int >= 1.
    """
    return check_int_at_least('radius', radius, 1)


def patch_index(size: int, patch: int, num_patches: int,
                device: torch.device) -> torch.Tensor:
    """Patch number of each position along one axis, last patch to the end."""
    positions = torch.arange(size, device=device)
    return torch.clamp(positions // patch, max=num_patches - 1)


def patch_matrix(index: torch.Tensor, num_patches: int,
                 dtype: torch.dtype) -> torch.Tensor:
    """One-hot (num_patches, size) matrix of a patch index."""
    return torch.nn.functional.one_hot(index, num_patches).t().to(dtype)


class PatchGrid:
    """Input and output patch membership of one convolution call.

    Args:
        input_size: (H, W) of the input.
        output_size: (H', W') of the output.
        stride: (sh, sw).
        radius: Patch size r on the output grid.
        device: Device of the index tensors.
    """

    def __init__(self, input_size, output_size, stride, radius, device):
        self.num = tuple(-(-o // radius) for o in output_size)
        self.in_index = [
            patch_index(size, radius * s, n, device)
            for size, s, n in zip(input_size, stride, self.num,
                                         strict=True)
        ]
        self.out_index = [
            patch_index(size, radius, n, device)
            for size, n in zip(output_size, self.num, strict=True)
        ]

    def input_counts(self, dtype):
        """Number of input positions of each patch, shape (Ph, Pw).

        A patch with no input position (padding wider than the kernel
        reach) counts 1, so its mean and its input gradient are 0.
        """
        rows, cols = (torch.bincount(i, minlength=n).to(dtype)
                      for i, n in zip(self.in_index, self.num,
                                         strict=True))
        return (rows[:, None] * cols[None, :]).clamp_min(1)

    def pool(self, tensor, index):
        """Sums ``tensor`` (B, C, H, W) over the patches of ``index``."""
        rows = patch_matrix(index[0], self.num[0], tensor.dtype)
        cols = patch_matrix(index[1], self.num[1], tensor.dtype)
        return torch.einsum('ph,bchw,qw->bcpq', rows, tensor, cols)


class GradientFilterRule(BackwardRule):
    """Patch-constant weight and input gradients from the patch means.

    The output gradient is summed over the output patches once, in
    :meth:`prepare`, and both gradients read that sum.

    Args:
        grid: The patches of this convolution call.
    """

    def __init__(self, grid: PatchGrid):
        self.grid = grid

    def prepare(self, stored, grad_output, geo, input_shape):
        """Output gradient summed per patch: (B, groups, C'/groups, Ph, Pw)."""
        (input_mean, ) = stored
        grid, groups = self.grid, geo.groups
        grad_sum = grid.pool(grad_output.to(input_mean.dtype), grid.out_index)
        return grad_sum.reshape(input_shape[0], groups,
                                grad_output.shape[1] // groups, *grid.num)

    def input_grad(self, stored, grad, weight, geo, input_shape):
        """Approximate input gradient, constant over each input patch."""
        grid, groups = self.grid, geo.groups
        batch, channels = input_shape[:2]
        out_channels, in_per_group = weight.shape[:2]
        with autocast_off(grad):
            weight_sum = weight.to(grad.dtype).sum((2, 3)).reshape(
                groups, out_channels // groups, in_per_group)
            patch_grad = torch.einsum('bgopq,goc->bgcpq', grad,
                                      weight_sum).reshape(
                                          batch, channels, *grid.num)
            patch_grad = patch_grad / grid.input_counts(patch_grad.dtype)
            return patch_grad.index_select(2, grid.in_index[0]).index_select(
                3, grid.in_index[1])

    def weight_grad(self, stored, grad, weight_shape, geo, input_shape):
        """Weight gradient, the same for every kernel tap."""
        (input_mean, ) = stored
        groups, grid = geo.groups, self.grid
        out_channels, in_per_group = weight_shape[:2]
        mean = input_mean.reshape(input_shape[0], groups, in_per_group,
                                  *grid.num)
        taps = torch.einsum('bgopq,bgcpq->goc', grad, mean).reshape(
            out_channels, in_per_group, 1, 1)
        return taps.expand(weight_shape).contiguous()

    def ranks(self, stored):
        """None: patch means have no rank."""
        return None


def gradient_filter_conv2d(
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: Optional[torch.Tensor],
        geo: ConvGeometry,
        radius: int = 2) -> Tuple[torch.Tensor, Optional[StoredActivation]]:
    """Convolution with Gradient Filter's patch-constant backward.

    Args:
        x: Input (B, C, H, W).
        weight: Weight.
        bias: Bias or None.
        geo: Geometry.
        radius: Patch size r >= 1 on the output grid.

    Returns:
        ``(output, stored)``: exact output and the size of the stored patch
        means (None when no gradient is needed and a plain convolution ran).

    Raises:
        ValueError: For a non-4-D input or a radius < 1.
    """
    check_activation(x)
    radius = check_radius(radius)
    needs_grad = torch.is_grad_enabled() and (weight.requires_grad
                                              or x.requires_grad)
    if not needs_grad:
        return conv2d(x, weight, bias, geo), None
    out_size = geo.output_size(x.shape[2:], weight.shape[2:])
    grid = PatchGrid(x.shape[2:], out_size, geo.stride, radius, x.device)
    with torch.no_grad(), autocast_off(x):
        work = x.detach().to(decomposition_dtype(x.dtype))
        input_mean = grid.pool(work, grid.in_index) / grid.input_counts(
            work.dtype)
    return compressed_layer(x, weight, bias, geo, GradientFilterRule(grid),
                            (input_mean, ))
