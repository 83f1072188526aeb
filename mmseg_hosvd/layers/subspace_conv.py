"""HOSVD convolution at fixed ranks, updated by subspace iteration."""
from typing import Optional, Sequence

from mmseg.registry import MODELS

from ..ops import subspace_hosvd_conv2d
from .compressed_conv import Conv2dHOSVD
from .fixed_ranks import FixedRankFactors


@MODELS.register_module()
class Conv2dHOSVDSubspace(FixedRankFactors, Conv2dHOSVD):
    """Convolution storing a fixed-rank Tucker form of its input.

    Each training step refines the previous step's factors by one step of
    subspace iteration (``Y = X (X^T U)``, then QR) instead of a new
    eigendecomposition. The factors live in non-persistent buffers: they are
    not in the state dict and are rebuilt from the Gram eigendecomposition
    after a resume, a new batch size or a rank change. Until ranks are set it
    behaves as :class:`Conv2dHOSVD` with ``eps``.

    Args:
        *args: As for ``nn.Conv2d``.
        eps: Threshold used while no ranks are set.
        ranks: Fixed (batch, channel, height, width) ranks, or None.
        **kwargs: As for ``nn.Conv2d``.
    """

    def __init__(self,
                 *args,
                 eps: float = 0.8,
                 ranks: Optional[Sequence[int]] = None,
                 **kwargs):
        # its own warm start is the previous factors, at fixed ranks
        super().__init__(*args, eps=eps, warm_start=False, **kwargs)
        self.init_fixed_ranks(ranks)

    def compressed_forward(self, x, geo):
        if self.ranks is None:
            return super().compressed_forward(x, geo)
        out, stored, factors = subspace_hosvd_conv2d(
            x, self.weight, self.bias, geo, self.ranks,
            self.previous_factors(), self.shared_input)
        self.keep_factors(stored, factors)
        return out, stored

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, ranks={self.ranks}'
