"""One decomposition per input tensor, shared by the layers that read it."""
import weakref
from typing import Any, Callable, Optional, Sequence, Tuple

import torch

from .checks import autocast_off
from .stats import StoredActivation


class SharedDecomposition:
    """Caches the decomposition of the last tensor it was asked about.

    Convolutions that read the same tensor in one forward (DeepLabV3's ASPP
    branches) hold the same instance: the first computes the decomposition,
    the others reuse it, and the stored form is counted once. The tensor is
    held by a weak reference, so a new forward (a new tensor) recomputes.
    """

    def __init__(self):
        self._tensor = None
        self._value = None

    def get(self, tensor: torch.Tensor,
            compute: Callable[[], Any]) -> Tuple[Any, bool]:
        """The decomposition of ``tensor``.

        Args:
            tensor: The input being decomposed.
            compute: Computes the decomposition when it is not cached.

        Returns:
            ``(value, first)``: ``first`` is True when it was computed now.
        """
        if self._tensor is not None and self._tensor() is tensor:
            return self._value, False
        self._value = compute()
        self._tensor = weakref.ref(tensor)
        return self._value, True

    def clear(self) -> None:
        """Drops the cached tensor and decomposition."""
        self._tensor = None
        self._value = None


def decompose_once(shared: Optional[SharedDecomposition],
                   tensor: torch.Tensor,
                   compute: Callable[[], Any]) -> Tuple[Any, bool]:
    """``compute()``, through ``shared`` when the input is shared.

    Returns:
        ``(value, first)``: ``first`` is False when another convolution
        already decomposed ``tensor`` in this forward.
    """
    if shared is None:
        return compute(), True
    return shared.get(tensor, compute)


def store_decomposition(
    shared: Optional[SharedDecomposition], tensor: torch.Tensor,
    decompose: Callable[[torch.Tensor], Sequence[torch.Tensor]],
    store: Callable[[Tuple[torch.Tensor, ...]], Tuple[torch.Tensor,
                                                      StoredActivation]]
) -> Tuple[torch.Tensor, StoredActivation, Tuple[torch.Tensor, ...]]:
    """Runs a layer that stores the decomposition of its input ``tensor``.

    The decomposition is computed with autocast off, once per forward when
    ``shared`` is given (the layers reading ``tensor`` share it).

    Args:
        shared: Cache shared with the other layers that read ``tensor``.
        tensor: The input.
        decompose: Returns, for ``tensor``, the tensors to store.
        store: Runs the layer storing these tensors; returns ``(output,
            size of what was stored)``.

    Returns:
        ``(output, stored, tensors)``: ``stored`` has 0 elements and
        ``shared=True`` when another layer stored the same decomposition.
    """

    def compute():
        with autocast_off(tensor):
            return tuple(decompose(tensor))

    tensors, first = decompose_once(shared, tensor, compute)
    out, stored = store(tensors)
    if not first:
        stored = stored._replace(numel=0, shared=True)
    return out, stored, tensors
