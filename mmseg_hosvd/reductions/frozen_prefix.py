"""Run the frozen prefix of a model in micro-batches, without grad.

Everything that runs before the first trainable module needs no gradient;
autograd keeps nothing of it, but its transients (a ResNet stem at 512 x 512
and batch 8 holds 128 MB per tensor) can set the step's peak. Run in
micro-batches, each frozen stage holds only a micro-batch's transients; its
outputs are written into preallocated full-batch tensors (no second copy
from concatenating), so what follows sees the same full batch. With
frozen norm statistics (eval-mode norms) every sample is computed
independently and the result is exact. Positions of a tuple output that
the step never reads (see :mod:`.unread_outputs`) are not kept at all.
"""
from typing import Callable, Dict, List, Optional, Sequence, Set

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase

from ..selection.model_trace import ModelTrace
from .input_release import release_storage_
from .unread_outputs import UnreadOutput


def check_micro_batch(micro_batch: int, name: str = 'micro_batch') -> int:
    """An int >= 1, or a ValueError naming the option and the bad value.

    Args:
        micro_batch: The value.
        name: The option it was given as, for the message.
    """
    if isinstance(micro_batch, bool) or not isinstance(
            micro_batch, int) or micro_batch < 1:
        raise ValueError(f'{name} must be an int >= 1, got {micro_batch!r}')
    return micro_batch


def _allocate(first, batch: int):
    """Empty full-batch outputs shaped like a micro-batch's ``first``."""
    if isinstance(first, UnreadOutput):
        return UnreadOutput(first, first.where,
                            (batch, ) + tuple(first.shape[1:]))
    if torch.is_tensor(first):
        return first.new_empty((batch, ) + tuple(first.shape[1:]))
    if isinstance(first, (tuple, list)):
        return type(first)(_allocate(part, batch) for part in first)
    # not per image (Swin's patch embedding also returns the token grid's
    # height and width): every micro-batch must give the same value
    return first


def _rows_of(value, rows: slice, batch: int):
    """``value[rows]`` for a tensor argument with one row per image (a
    residual's identity beside the input), else ``value`` itself."""
    if torch.is_tensor(value) and value.dim() > 0 and value.shape[0] == batch:
        return value[rows]
    return value


def _fill(out, chunk, start: int) -> None:
    """Copies a micro-batch's outputs into rows ``start:`` of ``out``."""
    if isinstance(out, UnreadOutput):
        return
    if torch.is_tensor(out):
        out[start:start + chunk.shape[0]].copy_(chunk)
    elif isinstance(out, (tuple, list)):
        for part, piece in zip(out, chunk, strict=True):
            _fill(part, piece, start)
    elif out != chunk:
        raise RuntimeError(
            f'a frozen prefix module returned {out!r} for its first '
            f'micro-batch and {chunk!r} for the one at image {start}: an '
            'output that is not a tensor must not depend on the images; '
            'turn frozen-prefix micro-batching off for this model')


class MicroBatchedForward:
    """A module's forward, run on micro-batches of its first argument (and
    of every other tensor argument with one row per image).

    Args:
        module: The frozen module.
        forward: Its original (bound) forward.
        micro_batch: Images per micro-batch.
        name: The module's name, for errors.
        keep: Positions of its tuple output to keep; the others become
            :class:`~.unread_outputs.UnreadOutput`. None keeps all.
        release_input: Free the memory of its first argument after a call
            with grad enabled (a training step), see
            :mod:`.input_release`; only for the module proven to be the last
            reader of the model's input batch.
    """

    def __init__(self, module: nn.Module, forward: Callable,
                 micro_batch: int, name: str = '',
                 keep: Optional[Set[int]] = None,
                 release_input: bool = False):
        self.forward = forward
        self.micro_batch = check_micro_batch(micro_batch)
        self.norms = [m for m in module.modules() if isinstance(m, _NormBase)]
        self.name, self.keep = name, keep
        self.release_input = release_input

    def __call__(self, x, *args, **kwargs):
        out = self._run(x, *args, **kwargs)
        if self.release_input and torch.is_grad_enabled():
            release_storage_(x)
        return out

    def _drop_unread(self, out):
        if self.keep is None or not isinstance(out, (tuple, list)):
            return out
        return type(out)(
            part if i in self.keep or not torch.is_tensor(part) else
            UnreadOutput(part, f'output {i} of {self.name or "the module"}')
            for i, part in enumerate(out))

    def _run(self, x, *args, **kwargs):
        if not torch.is_tensor(x) or x.shape[0] <= self.micro_batch:
            return self._drop_unread(self.forward(x, *args, **kwargs))
        training = [m for m in self.norms if m.training]
        if training:
            raise RuntimeError(
                'the frozen prefix runs in micro-batches, but its norm layer '
                f'{type(training[0]).__name__} is in training mode: batch '
                'statistics would differ per micro-batch. Keep norm_eval=True '
                '(CompressConvHook) or turn frozen-prefix micro-batching off')
        out = None
        batch = x.shape[0]
        with torch.no_grad():
            for start in range(0, batch, self.micro_batch):
                rows = slice(start, start + self.micro_batch)
                chunk = self._drop_unread(self.forward(
                    x[rows], *(_rows_of(a, rows, batch) for a in args),
                    **{k: _rows_of(v, rows, batch)
                       for k, v in kwargs.items()}))
                if out is None:
                    out = _allocate(chunk, x.shape[0])
                _fill(out, chunk, start)
                del chunk
        return out


def frozen_prefix(model: nn.Module, trace: ModelTrace) -> List[str]:
    """The largest modules that run, frozen, before any trainable one.

    A module qualifies when it holds no trainable parameter, contains no
    trainable module, read a tensor, and all its calls come before the
    first call of a module with trainable parameters. Descends from the
    root; a qualifying module is taken whole.

    Args:
        model: The model, already frozen (``requires_grad`` set).
        trace: Its trace.

    Returns:
        Module names in call order; empty when the first module to run is
        trainable.
    """
    # every name, also a second one of a module used twice (SegFormer's
    # Mix-FFN lists one dropout twice): the descent below meets them all
    modules = dict(model.named_modules(remove_duplicate=False))
    trainable = {
        name for name, module in modules.items()
        if any(p.requires_grad for p in module.parameters(recurse=False))
    }
    first_trainable = next((i for i, (name, _) in enumerate(trace.calls)
                            if name in trainable), len(trace.calls))
    calls = {}
    for index, (name, tensor_index) in enumerate(trace.calls):
        calls.setdefault(name, []).append((index, tensor_index))

    def qualifies(name: str) -> bool:
        if name == '' or name not in calls:
            return False
        if any(t == name or t.startswith(name + '.') for t in trainable):
            return False
        return all(index < first_trainable and tensor is not None
                   for index, tensor in calls[name])

    chosen: List[str] = []

    def visit(name: str) -> None:
        if qualifies(name):
            chosen.append(name)
            return
        for child, _ in modules[name].named_children():
            visit(f'{name}.{child}' if name else child)

    visit('')
    first_call = {name: calls[name][0][0] for name in chosen}
    return sorted(chosen, key=first_call.get)


def micro_batch_prefix_(model: nn.Module, names: Sequence[str],
                        micro_batch: int,
                        keep: Optional[Dict[str, Set[int]]] = None,
                        release_input: Optional[str] = None) -> None:
    """Makes each named module run in micro-batches without grad.

    The module's ``forward`` is replaced on the instance only; its class,
    parameters and state dict are untouched.

    Args:
        model: The model.
        names: Modules of its frozen prefix.
        micro_batch: Images per micro-batch.
        keep: Per module name, the positions of its tuple output to keep
            (see :func:`~.unread_outputs.read_positions`); modules not
            named keep every output.
        release_input: The module, among ``names``, after which the model's
            input batch is freed in training steps (see
            :mod:`.input_release`); None frees nothing.
    """
    keep = keep or {}
    for name in names:
        module = model.get_submodule(name)
        module.forward = MicroBatchedForward(module, module.forward,
                                             micro_batch, name,
                                             keep.get(name),
                                             name == release_input)
