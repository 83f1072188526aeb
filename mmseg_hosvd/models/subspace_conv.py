"""HOSVD convolution at fixed ranks, updated by subspace iteration."""
from typing import Optional, Sequence, Tuple

from mmseg.registry import MODELS

from ..ops import subspace_hosvd_conv2d
from .compressed_conv import Conv2dHOSVD

NUM_MODES = 4


def check_ranks(ranks: Sequence[int]) -> Tuple[int, ...]:
    """Validates four positive ranks.

    Raises:
        ValueError: Naming the bad ranks.
    """
    ranks = tuple(ranks)
    if len(ranks) != NUM_MODES or not all(
            isinstance(k, int) and not isinstance(k, bool) and k >= 1
            for k in ranks):
        raise ValueError('ranks must be 4 ints >= 1 (batch, channel, '
                         f'height, width), got {ranks!r}')
    return ranks


@MODELS.register_module()
class Conv2dHOSVDSubspace(Conv2dHOSVD):
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
        super().__init__(*args, eps=eps, **kwargs)
        for mode in range(NUM_MODES):
            self.register_buffer(f'factor{mode}', None, persistent=False)
        self.ranks = None if ranks is None else check_ranks(ranks)

    def set_ranks(self, ranks: Sequence[int]) -> None:
        """Fixes the ranks and drops the factors (re-initialised next step)."""
        self.ranks = check_ranks(ranks)
        for mode in range(NUM_MODES):
            setattr(self, f'factor{mode}', None)

    def compressed_forward(self, x, geo):
        if self.ranks is None:
            return super().compressed_forward(x, geo)
        previous = [getattr(self, f'factor{m}') for m in range(NUM_MODES)]
        out, stored, factors = subspace_hosvd_conv2d(
            x, self.weight, self.bias, geo, self.ranks, previous,
            self.shared_input)
        if stored is not None and not stored.shared:
            for mode, factor in enumerate(factors):
                setattr(self, f'factor{mode}', factor)
        return out, stored

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, ranks={self.ranks}'
