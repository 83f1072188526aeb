"""Fixed ranks and warm-start factors of the subspace-iteration modules."""
from typing import List, Optional, Sequence, Tuple

import torch

from ..ops.hosvd_layer import subspace_hosvd_layer

#: Most modes a subspace module's input has (a convolution's four).
MAX_MODES = 4


def check_ranks(ranks: Sequence[int], orders: Sequence[int] = (4, ),
                modes: str = 'batch, channel, height, width'
                ) -> Tuple[int, ...]:
    """Validates one positive rank per mode.

    Args:
        ranks: The ranks.
        orders: The accepted numbers of ranks.
        modes: How the error message names the modes.

    Returns:
        The ranks as a tuple.

    Raises:
        ValueError: Naming the bad ranks.
    """
    ranks = tuple(ranks)
    if len(ranks) not in orders or not all(
            isinstance(k, int) and not isinstance(k, bool) and k >= 1
            for k in ranks):
        counts = ' or '.join(str(n) for n in orders)
        raise ValueError(f'ranks must be {counts} ints >= 1 ({modes}), got '
                         f'{ranks!r}')
    return ranks


class FixedRankFactors:
    """Mixin: fixed ranks, and the previous step's factors as buffers.

    The factors live in non-persistent buffers ``factor0``...: they are not
    in the state dict and are rebuilt from the Gram eigendecomposition after
    a resume, a new batch size or a rank change. A subclass sets
    :attr:`rank_orders` and :attr:`rank_modes` and calls
    :meth:`init_fixed_ranks` from its ``__init__``.
    """

    rank_orders: Tuple[int, ...] = (4, )
    rank_modes: str = 'batch, channel, height, width'
    ranks: Optional[Tuple[int, ...]]

    def init_fixed_ranks(self, ranks: Optional[Sequence[int]]) -> None:
        """Registers the factor buffers and sets ``ranks`` (or None)."""
        for mode in range(MAX_MODES):
            self.register_buffer(f'factor{mode}', None, persistent=False)
        self.ranks = None if ranks is None else self._checked(ranks)

    def _checked(self, ranks: Sequence[int]) -> Tuple[int, ...]:
        return check_ranks(ranks, self.rank_orders, self.rank_modes)

    def set_ranks(self, ranks: Sequence[int]) -> None:
        """Fixes the ranks and drops the factors (re-initialised next step)."""
        self.ranks = self._checked(ranks)
        for mode in range(MAX_MODES):
            setattr(self, f'factor{mode}', None)

    def previous_factors(self) -> List[Optional[torch.Tensor]]:
        """The factors of the previous step, one per rank."""
        return [getattr(self, f'factor{m}') for m in range(len(self.ranks))]

    def keep_factors(self, stored, factors) -> None:
        """Keeps the factors this step computed (not those it shared)."""
        if stored is not None and not stored.shared:
            for mode, factor in enumerate(factors):
                setattr(self, f'factor{mode}', factor)


class SubspaceHOSVD(FixedRankFactors):
    """Mixin: a HOSVD layer at fixed ranks, updated by subspace iteration.

    It comes before a HOSVD layer (:class:`~.compressed_layer.HOSVDLayer`)
    in a subclass's bases. Each training step refines the previous step's
    factors by one step of subspace iteration (``Y = X (X^T U)``, then QR)
    instead of a new eigendecomposition. Until ranks are set the layer
    behaves as its HOSVD base with ``eps``.

    Args:
        *args: As for the wrapped module.
        eps: Threshold used while no ranks are set.
        ranks: Fixed ranks, one per mode of the input, or None.
        **kwargs: As for the HOSVD base.
    """

    def __init__(self,
                 *args,
                 eps: float = 0.8,
                 ranks: Optional[Sequence[int]] = None,
                 **kwargs):
        # its own warm start is the previous factors, at fixed ranks
        super().__init__(*args, eps=eps, warm_start=False, **kwargs)
        self.init_fixed_ranks(ranks)

    def compressed_forward(self, x, geo=None):
        """The fixed-rank form once ranks are set, else the HOSVD base's."""
        if self.ranks is None:
            return super().compressed_forward(x, geo)
        out, stored, factors = subspace_hosvd_layer(
            x, self.weight, self.bias, geo, self.ranks,
            self.previous_factors(), self.shared_input)
        self.keep_factors(stored, factors)
        return out, stored

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, ranks={self.ranks}'
