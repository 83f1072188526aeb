"""Run the frozen prefix of a model in micro-batches, without grad.

Everything that runs before the first trainable module needs no gradient;
autograd keeps nothing of it, but its transients (a ResNet stem at 512 x 512
and batch 8 holds 128 MB per tensor) can set the step's peak. Run in
micro-batches, each frozen stage holds only a micro-batch's transients; its
outputs are written into preallocated full-batch tensors (no second copy
from concatenating), so what follows sees the same full batch. With
frozen norm statistics (eval-mode norms) every sample is computed
independently and the result is exact.
"""
from typing import Callable, List, Sequence

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase

from .model_trace import ModelTrace


def check_micro_batch(micro_batch: int) -> int:
    """An int >= 1, or a ValueError naming the bad value."""
    if isinstance(micro_batch, bool) or not isinstance(
            micro_batch, int) or micro_batch < 1:
        raise ValueError(f'micro_batch must be an int >= 1, got '
                         f'{micro_batch!r}')
    return micro_batch


def _allocate(first, batch: int):
    """Empty full-batch outputs shaped like a micro-batch's ``first``."""
    if torch.is_tensor(first):
        return first.new_empty((batch, ) + tuple(first.shape[1:]))
    if isinstance(first, (tuple, list)):
        return type(first)(_allocate(part, batch) for part in first)
    raise TypeError(f'a frozen prefix module returned {type(first).__name__}'
                    '; only tensors and tuples or lists of them can be '
                    'micro-batched')


def _fill(out, chunk, start: int) -> None:
    """Copies a micro-batch's outputs into rows ``start:`` of ``out``."""
    if torch.is_tensor(out):
        out[start:start + chunk.shape[0]].copy_(chunk)
    else:
        for part, piece in zip(out, chunk):
            _fill(part, piece, start)


class MicroBatchedForward:
    """A module's forward, run on micro-batches of its first argument.

    Args:
        module: The frozen module.
        forward: Its original (bound) forward.
        micro_batch: Images per micro-batch.
    """

    def __init__(self, module: nn.Module, forward: Callable,
                 micro_batch: int):
        self.forward = forward
        self.micro_batch = check_micro_batch(micro_batch)
        self.norms = [m for m in module.modules() if isinstance(m, _NormBase)]

    def __call__(self, x, *args, **kwargs):
        if not torch.is_tensor(x) or x.shape[0] <= self.micro_batch:
            return self.forward(x, *args, **kwargs)
        training = [m for m in self.norms if m.training]
        if training:
            raise RuntimeError(
                'the frozen prefix runs in micro-batches, but its norm layer '
                f'{type(training[0]).__name__} is in training mode: batch '
                'statistics would differ per micro-batch. Keep norm_eval=True '
                '(CompressConvHook) or turn frozen-prefix micro-batching off')
        out = None
        with torch.no_grad():
            for start in range(0, x.shape[0], self.micro_batch):
                chunk = self.forward(x[start:start + self.micro_batch],
                                     *args, **kwargs)
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
    modules = dict(model.named_modules())
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
                        micro_batch: int) -> None:
    """Makes each named module run in micro-batches without grad.

    The module's ``forward`` is replaced on the instance only; its class,
    parameters and state dict are untouched.
    """
    for name in names:
        module = model.get_submodule(name)
        module.forward = MicroBatchedForward(module, module.forward,
                                             micro_batch)
