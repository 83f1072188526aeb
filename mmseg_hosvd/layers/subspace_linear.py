"""HOSVD Linear layer at fixed ranks, updated by subspace iteration."""
from typing import Optional, Sequence

from mmseg.registry import MODELS

from ..ops import LINEAR_ORDERS, subspace_hosvd_linear
from .compressed_linear import LinearHOSVD
from .fixed_ranks import FixedRankFactors


@MODELS.register_module()
class LinearHOSVDSubspace(FixedRankFactors, LinearHOSVD):
    """Linear layer storing a fixed-rank Tucker form of its input.

    The Linear counterpart of
    :class:`~.subspace_conv.Conv2dHOSVDSubspace`: one rank per mode of the
    input (2, 3 or 4 of them, the channel mode last), factors refined each
    training step by one subspace-iteration step. Until ranks are set it
    behaves as :class:`LinearHOSVD` with ``eps``.

    Args:
        *args: As for ``nn.Linear``.
        eps: Threshold used while no ranks are set.
        ranks: Fixed ranks, one per mode of the input, or None.
        **kwargs: As for ``nn.Linear``.
    """

    rank_orders = LINEAR_ORDERS
    rank_modes = 'batch, tokens or height and width, channel'

    def __init__(self,
                 *args,
                 eps: float = 0.8,
                 ranks: Optional[Sequence[int]] = None,
                 **kwargs):
        # its own warm start is the previous factors, at fixed ranks
        super().__init__(*args, eps=eps, warm_start=False, **kwargs)
        self.init_fixed_ranks(ranks)

    def compressed_forward(self, x):
        if self.ranks is None:
            return super().compressed_forward(x)
        out, stored, factors = subspace_hosvd_linear(
            x, self.weight, self.bias, self.ranks, self.previous_factors(),
            self.shared_input)
        self.keep_factors(stored, factors)
        return out, stored

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, ranks={self.ranks}'
