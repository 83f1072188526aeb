"""Outputs of a frozen module that the rest of a training step never reads.

A backbone returns a feature map per stage (ResNet-18-d8: four maps, 151 MB
at 512 x 512 and batch 8), held together in one tuple for the whole step
while a head reads only some of them (DeepLabV3's ASPP head one, 64 MB).
:func:`read_positions` finds, in one small training forward of the
segmentor's loss path (decode and auxiliary heads), which positions of a
module's tuple output any operation reads; :class:`UnreadOutput` takes the
place of the others: it has their shape, dtype and device but no storage,
and any operation on it raises an error that names the module and the
position instead of computing with absent data.
"""
from typing import Optional, Sequence, Set

import torch
from torch import nn
from torch.utils._pytree import tree_flatten


class UnreadOutput(torch.Tensor):
    """A tensor's shape and dtype without its data; any use raises.

    Args:
        like: The tensor it stands for (only its metadata is kept).
        where: Which output it replaces, for the error message.
        shape: Its shape, if not ``like``'s.
    """

    @staticmethod
    def __new__(cls, like: torch.Tensor, where: str,
                shape: Optional[Sequence[int]] = None):
        stand_in = torch.Tensor._make_wrapper_subclass(
            cls, like.shape if shape is None else tuple(shape),
            dtype=like.dtype, device=like.device)
        stand_in.where = where
        return stand_in

    def __init__(self, *args, **kwargs):
        super().__init__()

    def __repr__(self):
        return f'UnreadOutput({self.where}, shape={tuple(self.shape)})'

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        flat, _ = tree_flatten((args, kwargs or {}))
        where = next(a.where for a in flat if isinstance(a, UnreadOutput))
        raise RuntimeError(
            f'{func} read {where}, which FrozenPrefixHook dropped because '
            'the training forward it traced never read it. Set '
            'drop_unread=False in FrozenPrefixHook to keep every output')


#: What may be asked of an output without reading its data.
_METADATA = frozenset([
    torch.Tensor.size, torch.Tensor.dim, torch.Tensor.numel,
    torch.Tensor.element_size, torch.Tensor.shape.__get__,
    torch.Tensor.dtype.__get__, torch.Tensor.device.__get__,
    torch.Tensor.ndim.__get__
])


class DataReadWatch(torch.Tensor):
    """A tensor that tells :meth:`_read` when an operation uses its data
    (asking its shape, dtype or device is not a use); subclasses say what
    a read records."""

    def __init__(self, *args):
        super().__init__()

    def _read(self) -> None:
        raise NotImplementedError

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func not in _METADATA:
            flat, _ = tree_flatten((args, kwargs or {}))
            for arg in flat:
                if isinstance(arg, DataReadWatch):
                    arg._read()
        with torch._C.DisableTorchFunctionSubclass():
            return func(*args, **(kwargs or {}))


class _ReadWatch(DataReadWatch):
    """Output ``position`` of a module, recorded in ``reads`` when read."""

    @staticmethod
    def __new__(cls, tensor: torch.Tensor, position: int, reads: Set[int]):
        watched = tensor.as_subclass(cls)
        watched.position, watched.reads = position, reads
        return watched

    def _read(self) -> None:
        self.reads.add(self.position)


def _training_batch(model: nn.Module, input_shape):
    """A random image batch and label maps for the model's loss path."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    param = next(model.parameters())
    inputs = torch.randn(*input_shape, device=param.device, dtype=param.dtype)
    height, width = input_shape[-2:]
    samples = []
    for _ in range(input_shape[0]):
        sample = SegDataSample(metainfo=dict(
            img_shape=(height, width), pad_shape=(height, width),
            ori_shape=(height, width)))
        sample.gt_sem_seg = PixelData(data=torch.zeros(
            1, height, width, dtype=torch.long, device=param.device))
        samples.append(sample)
    return inputs, samples


def read_positions(model: nn.Module, name: str,
                   input_shape=(2, 3, 64, 64)) -> Optional[Set[int]]:
    """Positions of module ``name``'s tuple output that a step reads.

    Runs the segmentor's loss path (``model.loss``: decode and auxiliary
    heads, as training runs them) once under ``no_grad`` and in eval mode
    (no norm statistics change) on a random batch, with the module's
    outputs watched.

    Args:
        model: An mmseg segmentor, frozen and set up for training.
        name: A module whose output is a tuple or list of tensors.
        input_shape: Shape of the random batch.

    Returns:
        The positions read, or None when the module's output is not a
        tuple or list of tensors, or the model has no ``loss`` path (then
        nothing may be dropped).
    """
    if not hasattr(model, 'loss'):
        return None
    reads: Set[int] = set()
    shapes = {}

    def watch(module, args, output):
        if not isinstance(output, (tuple, list)) or not all(
                torch.is_tensor(o) for o in output):
            return None
        shapes['kind'] = type(output)
        return type(output)(
            _ReadWatch(o, i, reads) for i, o in enumerate(output))

    handle = model.get_submodule(name).register_forward_hook(watch)
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model.loss(*_training_batch(model, input_shape))
    finally:
        handle.remove()
        model.train(was_training)
    return reads if shapes else None
