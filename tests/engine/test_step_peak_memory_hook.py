"""The whole-step peak of one profiled iteration, kept with the checkpoint
and shown by tools/test.py's record and compare.py."""
import json

import pytest
import torch
from mmengine.runner import Runner

from mmseg_hosvd.engine import StepPeakMemoryHook
from mmseg_hosvd.protocol.comparison import collect, markdown_table
from mmseg_hosvd.protocol.reporting import (
    checkpoint_record,
    format_test_report,
)

from ..helpers import tiny_runner_config


def test_one_iteration_is_profiled_and_recorded(tiny_data, tmp_path):
    cfg = tiny_runner_config('fcn', str(tmp_path), tiny_data, [
        dict(type='CompressConvHook', method='hosvd', num_layers=5),
        dict(type='ActivationMemoryHook'),
        dict(type='StepPeakMemoryHook', iteration=2),
    ], max_iters=3)
    runner = Runner.from_cfg(cfg)
    runner.train()
    checkpoint = torch.load(tmp_path / 'iter_3.pth', weights_only=False)
    record = checkpoint['meta']['step_peak_memory']
    assert record['iteration'] == 2
    phases = record['phase_peaks_mb']
    assert list(phases) == ['preprocess', 'frozen_forward',
                            'finetuned_forward', 'loss', 'backward',
                            'optimizer']
    assert all(value > 0 for value in phases.values()), phases
    assert record['peak_increment_mb'] == max(phases.values())
    metrics = runner.test()
    test_record = checkpoint_record('configs/fcn/fcn_r18-d8_x.py',
                                    str(tmp_path / 'iter_3.pth'), metrics)
    assert test_record['step_peak_memory'] == record
    assert 'whole-step peak memory (iteration 2)' in format_test_report(
        test_record)
    with open(tmp_path / 'test_results.json', 'w') as f:
        json.dump(test_record, f)
    rows, _ = collect([str(tmp_path)])
    assert rows[0]['step_peak_mb'] == record['peak_increment_mb']
    assert f"{record['peak_increment_mb']:.1f}" in markdown_table(rows)


@pytest.mark.parametrize('bad', [1, 0, 2.5, True])
def test_bad_iteration_is_named(bad):
    with pytest.raises(ValueError, match=f'iteration must be an int >= 2, '
                       f'got {bad!r}'):
        StepPeakMemoryHook(iteration=bad)
