"""Free the preprocessed image batch once the frozen prefix has read it.

The data preprocessor's float image batch (24 MB at 512 x 512 and batch 8)
lives for the whole training step, referenced by ``train_step``'s data dict
and every frame down to the backbone, although only the first module of the
frozen prefix reads it and autograd keeps nothing of a frozen prefix. Once
that module has run, :func:`release_storage_` frees the batch's memory; the
tensor keeps its shape but has no data.

:func:`input_read_only_by` proves on the model's own loss path that this is
safe: the module receives the batch itself and nothing reads it after.
"""
from typing import Dict

import torch
from torch import nn

from .unread_outputs import DataReadWatch, _training_batch


class _LateReadWatch(DataReadWatch):
    """The input batch, recording whether an operation reads it once
    ``state['after']`` is set."""

    @staticmethod
    def __new__(cls, tensor: torch.Tensor, state: Dict[str, bool]):
        watched = tensor.as_subclass(cls)
        watched.state = state
        return watched

    def _read(self) -> None:
        if self.state['after']:
            self.state['late'] = True


def input_read_only_by(model: nn.Module, name: str,
                       input_shape=(2, 3, 64, 64)) -> bool:
    """Whether module ``name`` is the last reader of the model's input.

    Runs the segmentor's loss path once (``no_grad``, eval mode, a random
    batch) and checks that ``name``'s first call receives the input batch
    itself as its first argument and that no operation reads the batch
    after that call returns. Only mmseg's ``SegDataPreProcessor`` is
    accepted as the batch's producer: it always builds a new tensor
    (``stack_batch`` pads and stacks), never a view of the loaded data.

    Args:
        model: An mmseg segmentor, frozen and set up for training.
        name: The first module of its frozen prefix.
        input_shape: Shape of the random batch.

    Returns:
        True when freeing the batch after ``name`` runs is safe.
    """
    from mmseg.models import SegDataPreProcessor
    if not hasattr(model, 'loss') or not isinstance(
            getattr(model, 'data_preprocessor', None), SegDataPreProcessor):
        return False
    state = dict(after=False, late=False, received=False)
    inputs, samples = _training_batch(model, input_shape)
    watched = _LateReadWatch(inputs, state)

    def before(module, args):
        if not state['after'] and args and args[0] is watched:
            state['received'] = True

    def after(module, args, output):
        state['after'] = True

    module = model.get_submodule(name)
    handles = [module.register_forward_pre_hook(before),
               module.register_forward_hook(after)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model.loss(watched, samples)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return state['received'] and not state['late']


def release_storage_(tensor: torch.Tensor) -> bool:
    """Frees ``tensor``'s memory when it alone owns a plain storage.

    Only a contiguous tensor that requires no grad, is not a view and
    spans its whole storage is released; any later read of it fails with
    PyTorch's error about a storage of size 0.

    Returns:
        Whether the memory was freed.
    """
    if (type(tensor) is not torch.Tensor or tensor.requires_grad
            or tensor._base is not None or not tensor.is_contiguous()
            or tensor.storage_offset() != 0):
        return False
    storage = tensor.untyped_storage()
    if storage.nbytes() != tensor.numel() * tensor.element_size():
        return False
    storage.resize_(0)
    return True
