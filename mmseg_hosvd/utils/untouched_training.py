"""Measure on a model in training without changing how it trains."""
from contextlib import contextmanager
from typing import Iterator, List

import torch
from torch import nn

from ..ops.warm_start import warm_starts_in


def _cuda_devices() -> List[int]:
    """The current CUDA device, whose random state is forked with the
    CPU's (a dropout on the GPU draws there)."""
    return [torch.cuda.current_device()] if torch.cuda.is_available() else []


@contextmanager
def training_untouched(model: nn.Module) -> Iterator[None]:
    """Runs a measurement on ``model`` (extra forwards, backwards) and puts
    back everything it may change, so that training then draws, normalises
    and steps as it would have without it.

    Put back on exit: every parameter's gradient (set to None on entry, so
    a backward inside starts from zero), the value and object of every
    buffer the model had on entry (a norm in training mode updates its
    running statistics on each forward; a buffer registered inside stays),
    the randomized solvers' warm starts, and the random state of the CPU
    and of the current CUDA device (dropout draws in a forward).

    Args:
        model: The model being trained.

    Yields:
        None, while the measurement runs.
    """
    grads = {param: param.grad for param in model.parameters()}
    buffers = [(module, name, buffer, buffer.clone())
               for module in model.modules()
               for name, buffer in module._buffers.items()
               if buffer is not None]
    warm = [(start, start.snapshot()) for start in warm_starts_in(model)]
    model.zero_grad(set_to_none=True)
    try:
        with torch.random.fork_rng(devices=_cuda_devices()):
            yield
    finally:
        for param, grad in grads.items():
            param.grad = grad
        with torch.no_grad():
            for module, name, buffer, value in buffers:
                buffer.copy_(value)
                module._buffers[name] = buffer
        for start, snapshot in warm:
            start.restore(snapshot)
