"""HOSVD convolution at fixed ranks, updated by subspace iteration."""
from mmseg.registry import MODELS

from .compressed_conv import Conv2dHOSVD
from .fixed_ranks import SubspaceHOSVD


@MODELS.register_module()
class Conv2dHOSVDSubspace(SubspaceHOSVD, Conv2dHOSVD):
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
