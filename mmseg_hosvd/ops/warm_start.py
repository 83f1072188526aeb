"""The leading vectors of one layer's last decomposition, to start the next.

A layer decomposes a new activation every training step, and consecutive
activations have nearly the same leading subspaces. :class:`WarmStart`
keeps, per mode, the leading Ritz vectors of the randomized solver's last
solve (:mod:`.ritz`: the rank plus a few more) and hands them to it for the
same mode of the next activation. Only modes that the solver solved are
kept: a few vectors of the mode's size each (SegFormer-B0's fusion input:
1024 x 56 floats, 229 kB), held between steps, never in a state dict.
"""
from typing import Dict, List, Optional

import torch
from torch import nn

from .spectrum import compact


def check_warm_start(warm_start: bool) -> bool:
    """Validates a warm-start switch.

    Args:
        warm_start: True or False.

    Returns:
        ``warm_start``.

    Raises:
        ValueError: For any other value, which the message names.
    """
    if not isinstance(warm_start, bool):
        raise ValueError(f'warm_start must be True or False, got '
                         f'{warm_start!r}')
    return warm_start


class WarmStart:
    """Per-mode leading vectors of the last decomposition of one input.

    One instance belongs to one layer (or to the layers sharing one input);
    it is mutable, detached from autograd, and empty after construction,
    so a resumed run starts cold and decompositions after it may differ
    from those of an uninterrupted run by a few vectors of rank.
    """

    def __init__(self):
        self._vectors: Dict[int, torch.Tensor] = {}

    def get(self, mode: int, rows: int) -> Optional[torch.Tensor]:
        """The vectors kept for ``mode`` when they have ``rows`` rows.

        Args:
            mode: Index of the mode in the decomposed tensor.
            rows: Size of that mode now.

        Returns:
            The vectors (rows, k), or None when none are kept or the mode
            had another size (a smaller last batch, another crop).
        """
        vectors = self._vectors.get(mode)
        if vectors is None or vectors.shape[0] != rows:
            return None
        return vectors

    def keep(self, mode: int, vectors: Optional[torch.Tensor]) -> None:
        """Keeps ``vectors`` (rows, k) to start ``mode``'s next solve.

        Args:
            mode: Index of the mode in the decomposed tensor.
            vectors: The block, copied out of any larger tensor; None
                (a solver that gives no start) forgets the mode's block.
        """
        if vectors is None:
            self._vectors.pop(mode, None)
        else:
            self._vectors[mode] = compact(vectors.detach())

    def snapshot(self) -> Dict[int, torch.Tensor]:
        """The kept blocks as they are now, for :meth:`restore`."""
        return dict(self._vectors)

    def restore(self, snapshot: Dict[int, torch.Tensor]) -> None:
        """Keeps exactly the blocks of a :meth:`snapshot` again."""
        self._vectors = dict(snapshot)

    def clear(self) -> None:
        """Forgets every kept vector: the next decomposition starts cold."""
        self._vectors.clear()

    def __len__(self) -> int:
        return len(self._vectors)


def warm_starts_in(module: nn.Module) -> List[WarmStart]:
    """Every :class:`WarmStart` of ``module``'s submodules, once each (the
    layers reading one input share theirs), in module order."""
    found = {}
    for sub in module.modules():
        start = getattr(sub, 'warm_start', None)
        if isinstance(start, WarmStart):
            found.setdefault(id(start), start)
    return list(found.values())
