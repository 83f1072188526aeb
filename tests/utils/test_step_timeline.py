"""The step's memory timeline, read from the allocation events, gives what
PyTorch's export_memory_timeline gives on a real profiled training step."""
import json

import pytest
from mmengine.runner import Runner

from mmseg_hosvd.engine.hooks import step_peak_memory_hook
from mmseg_hosvd.utils import step_memory

from ..helpers import tiny_runner_config


def exported_timeline(prof, tmp_path):
    """PyTorch's timeline: times (µs) and bytes summed over categories,
    over its first entry (before the profiler's marker)."""
    path = tmp_path / 'timeline.json'
    prof.export_memory_timeline(str(path), device='cpu')
    times, sizes = json.loads(path.read_text())
    totals = [sum(s) for s in sizes]
    return times, [t - totals[0] for t in totals]


@pytest.mark.parametrize('hooks', [
    [dict(type='CompressConvHook', method='hosvd', num_layers=5),
     dict(type='FrozenPrefixHook', micro_batch=1),
     dict(type='ChunkedLossHook', chunk=1)],
    [dict(type='CompressConvHook', method='vanilla', num_layers=5)],
], ids=['hosvd-exact-reductions', 'vanilla'])
def test_peaks_equal_those_of_the_exported_timeline(tiny_data, tmp_path,
                                                    monkeypatch, hooks):
    seen = []

    def both(prof, device):
        seen.append((step_memory.step_peaks(prof, device),
                     exported_timeline(prof, tmp_path),
                     step_memory._phase_ranges(
                         prof, step_memory._timeline(prof, device)[0])))
        return seen[-1][0]

    monkeypatch.setattr(step_peak_memory_hook, 'step_peaks', both)
    cfg = tiny_runner_config('deeplabv3', str(tmp_path), tiny_data, hooks + [
        dict(type='StepPeakMemoryHook', iteration=2)], max_iters=2)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    Runner.from_cfg(cfg).train()
    (record, (times, totals), ranges), = seen
    assert record['peak_increment_mb'] == max(totals) / step_memory.MB > 1
    for phase, (begin, end) in ranges.items():
        assert record['phase_peaks_mb'][phase] == step_memory._peak_in(
            times, totals, begin, end) / step_memory.MB, phase
    assert set(ranges) == set(step_memory.PHASES)
