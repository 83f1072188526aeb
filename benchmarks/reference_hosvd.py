"""The original authors' way of computing HOSVD-eps, kept as a baseline.

A full ``torch.linalg.svd`` of every unfolding at every step, and every
convolution compressing its own input even when several read the same one.
Used by the benchmarks only, to measure against in the same run.
"""
import torch

from mmseg_hosvd.models import Conv2dHOSVD
from mmseg_hosvd.ops import (
    multi_mode_dot,
    rank_from_explained_variance,
    unfold,
)
from mmseg_hosvd.ops.compressed_conv_function import compressed_conv2d
from mmseg_hosvd.ops.hosvd_conv import TUCKER_RULE


def reference_hosvd(tensor, eps):
    """HOSVD-eps with a full SVD of each unfolding."""
    work = tensor.detach().float()
    factors = []
    for mode in range(work.ndim):
        u, s, _ = torch.linalg.svd(unfold(work, mode), full_matrices=False)
        factors.append(u[:, :rank_from_explained_variance(s, eps)])
    return multi_mode_dot(work, factors, transpose=True), factors


class AuthorsHOSVDConv2d(Conv2dHOSVD):
    """Conv2dHOSVD whose decomposition runs the authors' way, never shared."""

    def compressed_forward(self, x, geo):
        if not self.weight.requires_grad:
            return super().compressed_forward(x, geo)
        core, factors = reference_hosvd(x, self.eps)
        return compressed_conv2d(x, self.weight, self.bias, geo, TUCKER_RULE,
                                 [core, *factors])
