"""HOSVD Linear layer at fixed ranks, updated by subspace iteration."""
from mmseg.registry import MODELS

from ..ops import LINEAR_ORDERS
from .compressed_linear import LinearHOSVD
from .fixed_ranks import SubspaceHOSVD


@MODELS.register_module()
class LinearHOSVDSubspace(SubspaceHOSVD, LinearHOSVD):
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
