"""Counts the analytical activation memory of the fine-tuned layers."""
from typing import Dict, Sequence

import torch
from torch import nn
from torch.multiprocessing.reductions import StorageWeakRef

from ..layers.compressed_conv import CompressedConv2d
from ..layers.compressed_linear import CompressedLinear
from ..ops import ANALYTICAL_BYTES_PER_ELEMENT
from ..utils import storage_key


class ConvMemoryCounter:
    """Elements the named layers store for backward, per forward.

    A compressed convolution or Linear layer counts what it stored (0 when
    it shares another's decomposition); a plain one with a trainable weight
    counts its input, once per input tensor. Forwards that backward
    recomputes (activation checkpointing) are not counted again: the count
    is what the layers need for their weight gradients, whether it is
    stored through the forward or recomputed.

    Args:
        model: The model.
        names: Convolution and Linear layer names.
    """

    def __init__(self, model: nn.Module, names: Sequence[str]):
        self.elements = 0
        self._seen: Dict[tuple, StorageWeakRef] = {}
        self._handles = [
            model.get_submodule(n).register_forward_hook(self._count)
            for n in names
        ]

    def _count(self, module, inputs, output) -> None:
        if not (module.training and torch.is_grad_enabled()):
            return
        if torch._C._current_graph_task_id() != -1:
            # a forward recomputed inside backward (activation
            # checkpointing): what it stores was counted in the forward
            return
        if isinstance(module, (CompressedConv2d, CompressedLinear)):
            stored = module.last_stored
            self.elements += 0 if stored is None else stored.numel
        elif module.weight.requires_grad:
            # an address seen before counts again once its storage is freed
            # (the allocator reuses it for another tensor)
            key = storage_key(inputs[0])
            seen = self._seen.get(key)
            if seen is None or seen.expired():
                self._seen[key] = StorageWeakRef(inputs[0].untyped_storage())
                self.elements += inputs[0].numel()

    def reset(self) -> None:
        """Starts a new forward."""
        self.elements = 0
        self._seen = {}

    @property
    def bytes(self) -> int:
        """Analytical bytes: elements times 4."""
        return self.elements * ANALYTICAL_BYTES_PER_ELEMENT

    def remove(self) -> None:
        """Removes the forward hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
