"""The memory live during one training step, phase by phase.

A :class:`StepMarks` marks, inside a profiled training step, where each
phase begins: the data preprocessor's output ends ``preprocess``, the first
call of a module with trainable parameters ends ``frozen_forward``, the
classifier's output ends ``finetuned_forward``, the gradient reaching the
classifier ends ``loss``, and the optimizer's step starts ``optimizer``.
:func:`step_peaks` reads the profiler's allocation events (the running
sum of what the allocator handed out and took back) and returns the
step's peak over what was live before it, and each phase's.
"""
from typing import Any, Callable, Dict, List, Tuple

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function

MB = 2**20
PHASES = ('preprocess', 'frozen_forward', 'finetuned_forward', 'loss',
          'backward', 'optimizer')
CPU = torch.device('cpu')
_MARKS = ('preprocessed', 'finetuned', 'logits', 'backward', 'optimizer')


def _mark(name: str) -> None:
    with record_function(f'mark:{name}'):
        pass


class StepMarks:
    """Hooks that mark the phases of each training step of ``model``.

    Args:
        model: The segmentor (unwrapped), set up for fine-tuning.
        optimizer: Its optimizer, or None (no ``optimizer`` phase).
        classifier: Name of the module whose output is the logits.
    """

    def __init__(self, model: nn.Module, optimizer=None,
                 classifier: str = 'decode_head.conv_seg'):
        self.seen = set()
        head = model.get_submodule(classifier)
        self.handles = [
            model.data_preprocessor.register_forward_hook(
                lambda *_: self._once('preprocessed')),
            head.register_forward_hook(lambda *_: self._once('logits')),
            head.register_full_backward_pre_hook(
                lambda *_: self._once('backward')),
        ]
        for module in model.modules():
            if any(p.requires_grad for p in module.parameters(
                    recurse=False)):
                self.handles.append(module.register_forward_pre_hook(
                    lambda *_: self._once('finetuned')))
        if optimizer is not None:
            self.handles.append(optimizer.register_step_pre_hook(
                lambda *_: self._once('optimizer')))

    def _once(self, name: str) -> None:
        if name not in self.seen:
            self.seen.add(name)
            _mark(name)

    def new_step(self) -> None:
        """Starts marking a new step."""
        self.seen = set()

    def remove(self) -> None:
        """Removes the hooks."""
        for handle in self.handles:
            handle.remove()
        self.handles = []


def start_profiler(device: torch.device) -> profile:
    """A started profiler that records what :func:`step_peaks` reads."""
    activities = [ProfilerActivity.CPU]
    if device.type == 'cuda':
        activities.append(ProfilerActivity.CUDA)
    # shapes and stacks as when the peaks were read through PyTorch's
    # export_memory_timeline, so that the same events are recorded
    # (without them the profiler also reports frees of tensors allocated
    # before it started, which moves every later total)
    prof = profile(activities=activities, profile_memory=True,
                   record_shapes=True, with_stack=True)
    prof.__enter__()
    # a marker first, so that the profiled code's first tensor is not the
    # first event (the reference timeline's baseline)
    torch.empty(1, device=device)
    return prof


def _memory_events(prof: profile, device: torch.device) -> list:
    """The profiler's allocation and free events on ``device``, in order."""
    kind = device.type.upper()
    index = device.index or 0 if device.type == 'cuda' else None
    events = [
        e for e in prof.profiler.kineto_results.events()
        if e.name() == '[memory]' and e.device_type().name == kind and (
            index is None or e.device_index() == index)
    ]
    return sorted(events, key=lambda e: e.start_ns())


def _timeline(prof: profile, device: torch.device
              ) -> Tuple[List[int], List[int]]:
    """Times (µs) and the bytes live over those live when profiling began,
    after each allocation or free on ``device``.

    The running sum of the allocator's events: the numbers PyTorch's
    ``export_memory_timeline`` gives (summed over its categories), read in
    a fraction of its time, since it classifies every tensor first.
    """
    times, live, total = [], [], 0
    for event in _memory_events(prof, device):
        total += event.nbytes()
        times.append(event.start_ns() // 1000)
        live.append(total)
    return times, live


def _phase_ranges(prof: profile, times: List[int]
                  ) -> Dict[str, Tuple[float, float]]:
    start = prof.profiler.kineto_results.trace_start_ns() / 1e3
    found = {
        e.name()[len('mark:'):]: e.start_ns() / 1e3
        for e in prof.profiler.kineto_results.events()
        if e.name().startswith('mark:')
    }
    begin = times[0] if times else start
    end = times[-1] if times else start
    edges = [begin] + [found.get(m) for m in _MARKS] + [end]
    ranges = {}
    for i, phase in enumerate(PHASES):
        if edges[i] is None:  # its mark never came: the phase did not run
            continue
        following = next(e for e in edges[i + 1:] if e is not None)
        ranges[phase] = (edges[i], following)
    return ranges


def _peak_in(times, totals, begin: float, end: float) -> int:
    peak = 0
    for time, total in zip(times, totals, strict=True):
        if time <= begin:
            peak = total
        elif time <= end:
            peak = max(peak, total)
        else:
            break
    return peak


def step_peaks(prof: profile, device: torch.device) -> dict:
    """The peak of a profiled step and of each phase, in MB.

    Args:
        prof: The profiler, stopped, that covered one step with
            :class:`StepMarks` in place.
        device: Where the step ran.

    Returns:
        ``dict(peak_increment_mb, phase_peaks_mb)``: the most bytes live at
        once over those live before the step, overall and per phase (0 for
        a phase that did not run, such as the optimizer's on a micro-batch
        of gradient accumulation). The ``loss`` phase ends when the
        gradient reaches the classifier: it includes the loss's backward.
    """
    times, totals = _timeline(prof, device)
    ranges = _phase_ranges(prof, times)
    return dict(
        peak_increment_mb=max(totals, default=0) / MB,
        phase_peaks_mb={
            phase: (_peak_in(times, totals, *ranges[phase]) / MB
                    if phase in ranges else 0.0)
            for phase in PHASES
        })


def transient_peak_bytes(fn: Callable[[], Any],
                         device: torch.device = CPU) -> int:
    """The most bytes the allocator held at once while ``fn()`` ran, over
    what it held when it started (the same profiler timeline as
    :func:`step_peaks`).

    Args:
        fn: What to run.
        device: Whose allocator to read.
    """
    prof = start_profiler(device)
    try:
        fn()
    finally:
        prof.__exit__(None, None, None)
    _, live = _timeline(prof, device)
    return max(live)
