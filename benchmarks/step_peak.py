"""One full training step, profiled for its whole-step peak.

A step is what MMEngine's train loop runs: the data preprocessor, the
forward through the frozen prefix and the fine-tuned region, mmseg's
decode-head loss on full-size labels, the backward and the optimizer step
(with the config's gradient clipping). The phases and the peaks come from
the library's :mod:`mmseg_hosvd.utils.step_memory` (as
``StepPeakMemoryHook`` measures them in training).
"""
import os
from typing import Iterable, List, Sequence

# mmseg_hosvd first: with mmcv-lite, mmseg imports only after its compat fixes
import mmseg_hosvd  # noqa: F401  # isort: skip
import torch
from torch import nn

from mmseg_hosvd.utils.step_memory import StepMarks, start_profiler, step_peaks

MB = 2**20


def train_step(model: nn.Module, data: dict, optim_wrapper) -> float:
    """One training step, as MMEngine's ``train_step`` runs it.

    With gradient accumulation (the optimizer wrapper's
    ``accumulative_counts``), the optimizer steps on the last micro-batch
    only, as in ``OptimWrapper.update_params``.

    Returns:
        The loss.
    """
    batch = model.data_preprocessor(data, True)
    with optim_wrapper.optim_context(model):
        losses = model._run_forward(batch, mode='loss')
    loss, _ = model.parse_losses(losses)
    optim_wrapper.update_params(loss)
    return float(loss.detach())


def profile_step(model: nn.Module, batches: Sequence[dict], optim_wrapper,
                 device: torch.device) -> dict:
    """The allocator's peak of one step and of each phase, in MB.

    A step is one optimizer step: every micro-batch of ``batches`` (one
    without gradient accumulation), as the train loop runs them with
    ``whole_steps`` and ``StepPeakMemoryHook`` profiles them. The
    gradients the first micro-batch creates are part of the step, as they
    are in training, where the optimizer wrapper sets them to None after
    each step.

    Args:
        model: The segmentor.
        batches: The micro-batches of one optimizer step.
        optim_wrapper: Its optimizer wrapper.
        device: Where it runs.

    Returns:
        ``peak_increment_mb`` (most bytes live at once, over those live
        before the step), ``phase_peaks_mb`` and, on CUDA,
        ``cuda_max_allocated_mb`` (the whole peak, not an increment).
    """
    marks = StepMarks(model, optim_wrapper.optimizer)
    if device.type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    profiler = start_profiler(device)
    try:
        for data in batches:
            train_step(model, data, optim_wrapper)
    finally:
        profiler.__exit__(None, None, None)
        marks.remove()
    result = step_peaks(profiler, device)
    if device.type == 'cuda':
        torch.cuda.synchronize()
        result['cuda_max_allocated_mb'] = (torch.cuda.max_memory_allocated() /
                                           MB)
    return result


def resident_bytes(objects: Iterable[torch.Tensor]) -> int:
    """Bytes of the distinct storages of ``objects``."""
    seen, total = set(), 0
    for tensor in objects:
        storage = tensor.untyped_storage()
        key = (storage.data_ptr(), storage.device)
        if key not in seen:
            seen.add(key)
            total += storage.nbytes()
    return total


def state_tensors(model: nn.Module, optimizer) -> List[torch.Tensor]:
    """Parameters, buffers, gradients and optimizer state: what a step finds
    already allocated."""
    tensors = list(model.parameters()) + list(model.buffers())
    tensors += [p.grad for p in model.parameters() if p.grad is not None]
    for state in optimizer.state.values():
        tensors += [v for v in state.values() if torch.is_tensor(v)]
    return tensors


def step_ranks(model: nn.Module) -> dict:
    """The ranks each compressed layer stored in the last step (HOSVD's
    per mode, SVD's one), by layer name; layers without ranks are left
    out."""
    ranks = {}
    for name, module in model.named_modules():
        stored = getattr(module, 'last_stored', None)
        if stored is not None and stored.ranks is not None:
            ranks[name] = (list(stored.ranks) if isinstance(
                stored.ranks, tuple) else stored.ranks)
    return ranks


def rss_mb() -> float:
    """The process's resident set size now (Linux), in MB."""
    with open('/proc/self/statm') as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf('SC_PAGE_SIZE') / MB


def max_rss_mb() -> float:
    """The process's peak resident set size so far, in MB."""
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
