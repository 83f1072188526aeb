"""Measures the bytes that autograd saves for backward."""
from collections import Counter
from typing import Callable, Iterable, Optional, Set, Tuple

import torch
from torch import nn


def storage_key(tensor: torch.Tensor) -> tuple:
    """Identity of a tensor's storage (device and address)."""
    storage = tensor.untyped_storage()
    return (tensor.device.type, tensor.device.index, storage.data_ptr())


class SavedTensorMeter:
    """Context manager that sums the distinct storages saved for backward.

    Every tensor that autograd saves inside the context is counted once per
    storage (views of one storage count once), at the storage's full size;
    storages of ``exclude`` (parameters and buffers) are not counted.

    Saved-tensor hooks turn off autograd's check that a saved tensor was not
    modified in place before backward; the meter does that check itself, so
    an in-place bug still raises autograd's error instead of silently giving
    wrong gradients. It keeps a reference to each saved tensor, never a
    copy, and gives backward the very same tensor.

    Args:
        exclude: Tensors whose storages are not counted.
        owner: Called when a storage is first counted; its bytes are also
            added to ``by_owner[owner()]`` (e.g.
            :meth:`~mmseg_hosvd.utils.RunningModule.kind`).

    Example:
        >>> meter = SavedTensorMeter(model.parameters())
        >>> with meter:
        ...     loss = model(x).sum()
        >>> meter.bytes
    """

    def __init__(self, exclude: Iterable[torch.Tensor] = (),
                 owner: Optional[Callable[[], str]] = None):
        self.excluded: Set[tuple] = {storage_key(t) for t in exclude}
        self.seen: Set[tuple] = set()
        self.bytes = 0
        self.by_owner: Counter = Counter()
        self.owner = owner
        self._context = None

    @classmethod
    def for_model(cls, model: nn.Module,
                  owner: Optional[Callable[[], str]] = None
                  ) -> 'SavedTensorMeter':
        """A meter that excludes the model's parameters and buffers."""
        return cls(list(model.parameters()) + list(model.buffers()), owner)

    def _pack(self, tensor: torch.Tensor) -> Tuple[torch.Tensor, int]:
        key = storage_key(tensor)
        if key not in self.excluded and key not in self.seen:
            self.seen.add(key)
            size = tensor.untyped_storage().nbytes()
            self.bytes += size
            if self.owner is not None:
                self.by_owner[self.owner()] += size
        return tensor, tensor._version

    @staticmethod
    def _unpack(packed: Tuple[torch.Tensor, int]) -> torch.Tensor:
        tensor, version = packed
        if tensor._version != version:
            raise RuntimeError(
                'one of the variables needed for gradient computation has '
                'been modified by an inplace operation: '
                f'[{tensor.type()} {list(tensor.shape)}], saved for backward '
                f'under SavedTensorMeter, is at version {tensor._version}; '
                f'expected version {version} instead. Hint: enable anomaly '
                'detection to find the operation that failed to compute its '
                'gradient, with torch.autograd.set_detect_anomaly(True).')
        return tensor

    def reset(self) -> None:
        """Forgets what was counted."""
        self.seen.clear()
        self.bytes = 0
        self.by_owner.clear()

    def __enter__(self) -> 'SavedTensorMeter':
        self.reset()
        self._context = torch.autograd.graph.saved_tensors_hooks(
            self._pack, self._unpack)
        self._context.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        context, self._context = self._context, None
        context.__exit__(*exc)
