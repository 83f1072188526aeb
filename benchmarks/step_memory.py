"""The memory live during one full training step, phase by phase.

A step is what MMEngine's train loop runs: the data preprocessor, the
forward through the frozen prefix and the fine-tuned region, mmseg's
decode-head loss on full-size labels, the backward and the optimizer step
(with the config's gradient clipping). Its phases are marked with
``torch.profiler.record_function``; the first call of a trainable module
ends the frozen forward and the classifier's output starts the loss.

On CPU the live bytes come from PyTorch's allocation events: the profiler's
memory timeline (``export_memory_timeline``), the running sum of what the
allocator handed out and took back, relative to the step's start. On CUDA
the same timeline is taken on the device, and the whole step's
``torch.cuda.max_memory_allocated`` is recorded beside it.
"""
import json
import os
import tempfile
from typing import Dict, Iterable, List, Optional, Tuple

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function

MB = 2**20
PHASES = ('preprocess', 'frozen_forward', 'finetuned_forward', 'loss',
          'backward', 'optimizer')


class PhaseMarks:
    """Marks where the fine-tuned forward and the loss start.

    Args:
        model: The segmentor, set up for fine-tuning.
        trainable: Names of the trainable modules.
    """

    def __init__(self, model: nn.Module, trainable: Iterable[str]):
        self.finetuned_seen = False
        self.handles = [
            model.get_submodule(name).register_forward_pre_hook(
                self._finetuned) for name in trainable
        ]
        # mmseg's head calls its own forward directly (no hooks), but the
        # classifier's output ends it
        self.handles.append(
            model.decode_head.conv_seg.register_forward_hook(self._loss))

    def _finetuned(self, module, args):
        if not self.finetuned_seen:
            self.finetuned_seen = True
            with record_function('mark:finetuned_forward'):
                pass

    def _loss(self, module, args, output):
        with record_function('mark:loss'):
            pass

    def new_step(self) -> None:
        """Resets the marks for the next step."""
        self.finetuned_seen = False

    def remove(self) -> None:
        """Removes the hooks."""
        for handle in self.handles:
            handle.remove()


def train_step(model: nn.Module, data: dict, optim_wrapper,
               marks: Optional[PhaseMarks] = None) -> float:
    """One training step, as MMEngine's ``train_step`` with phase marks.

    With gradient accumulation (the optimizer wrapper's
    ``accumulative_counts``), the optimizer steps on the last micro-batch
    only, as in ``OptimWrapper.update_params``.

    Returns:
        The loss.
    """
    if marks is not None:
        marks.new_step()
    with record_function('phase:preprocess'):
        batch = model.data_preprocessor(data, True)
    with record_function('phase:forward'), optim_wrapper.optim_context(
            model):
        losses = model._run_forward(batch, mode='loss')
        loss, _ = model.parse_losses(losses)
    with record_function('phase:backward'):
        optim_wrapper.backward(optim_wrapper.scale_loss(loss))
    with record_function('phase:optimizer'):
        if optim_wrapper.should_update():
            optim_wrapper.step()
            optim_wrapper.zero_grad()
    return float(loss)


def _timeline(prof, device: str) -> Tuple[List[float], List[int]]:
    """Times (µs, absolute) and live bytes of the profiler's timeline.

    The timeline counts the tensors the step found allocated (parameters,
    optimizer state, the batch) from its first entry; the bytes returned
    are over that first entry: what the step added.
    """
    handle, path = tempfile.mkstemp(suffix='.json')
    os.close(handle)
    try:
        prof.export_memory_timeline(path, device=device)
        with open(path) as f:
            times, sizes = json.load(f)
    finally:
        os.remove(path)
    totals = [sum(s) for s in sizes]
    return times, [t - totals[0] for t in totals] if totals else []


def _ranges(prof) -> Dict[str, Tuple[float, float]]:
    """Absolute (µs) time range of every phase."""
    start = prof.profiler.kineto_results.trace_start_ns() / 1e3
    found = {}
    for event in prof.events():
        if event.name.startswith(('phase:', 'mark:')):
            found[event.name] = (start + event.time_range.start,
                                 start + event.time_range.end)
    forward = found['phase:forward']
    finetuned = found.get('mark:finetuned_forward', forward)[0]
    loss = found['mark:loss'][0]
    return dict(preprocess=found['phase:preprocess'],
                frozen_forward=(forward[0], finetuned),
                finetuned_forward=(finetuned, loss),
                loss=(loss, forward[1]),
                backward=found['phase:backward'],
                optimizer=found['phase:optimizer'])


def _peak_in(times, totals, begin, end) -> int:
    """The most bytes live in [begin, end], counting what was live at
    ``begin``."""
    peak = 0
    for time, total in zip(times, totals):
        if time <= begin:
            peak = total
        elif time <= end:
            peak = max(peak, total)
        else:
            break
    return peak


def profile_step(model: nn.Module, data: dict, optim_wrapper,
                 marks: PhaseMarks, device: torch.device) -> dict:
    """The allocator's peak of one step and of each phase, in MB.

    Returns:
        ``peak_increment_mb`` (most bytes live at once, over those live
        before the step), ``phase_peaks_mb`` and, on CUDA,
        ``cuda_max_allocated_mb`` (the whole peak, not an increment).
    """
    activities = [ProfilerActivity.CPU]
    if device.type == 'cuda':
        activities.append(ProfilerActivity.CUDA)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    with profile(activities=activities, profile_memory=True,
                 record_shapes=True, with_stack=True) as prof:
        train_step(model, data, optim_wrapper, marks)
    result = {}
    if device.type == 'cuda':
        torch.cuda.synchronize()
        result['cuda_max_allocated_mb'] = (torch.cuda.max_memory_allocated() /
                                           MB)
    times, totals = _timeline(
        prof, 'cpu' if device.type == 'cpu' else f'cuda:{device.index or 0}')
    ranges = _ranges(prof)
    result['phase_peaks_mb'] = {
        phase: _peak_in(times, totals, *ranges[phase]) / MB
        for phase in PHASES
    }
    result['peak_increment_mb'] = max(totals, default=0) / MB
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


def rss_mb() -> float:
    """The process's resident set size now (Linux), in MB."""
    with open('/proc/self/statm') as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf('SC_PAGE_SIZE') / MB


def max_rss_mb() -> float:
    """The process's peak resident set size so far, in MB."""
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


