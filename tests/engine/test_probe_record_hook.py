"""A probe's record holds what its checkpoint's meta would, without the
checkpoint, and other hooks' checkpoint work is not run for it."""
import json
import os

import torch
from mmengine.runner import Runner

from mmseg_hosvd.engine.hooks import PROBE_RECORD_FILE

from ..helpers import tiny_runner_config

DEFAULT_HOOKS = dict(step_peak=dict(type='StepPeakMemoryHook', iteration=2),
                     probe_record=dict(type='ProbeRecordHook'))


def train(work_dir, tiny_data, hooks, checkpoint):
    cfg = tiny_runner_config('deeplabv3', str(work_dir), tiny_data, hooks,
                             max_iters=3)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.default_hooks.update(DEFAULT_HOOKS)
    if not checkpoint:
        cfg.default_hooks.checkpoint = None
    Runner.from_cfg(cfg).train()
    with open(os.path.join(work_dir, PROBE_RECORD_FILE)) as f:
        return json.load(f)


def test_the_record_is_the_checkpoint_meta_and_every_step_time(
        tiny_data, tmp_path):
    hook = dict(type='CompressConvHook', method='hosvd', num_layers=5,
                eps=0.8, allocate=dict(grid=[0.8], budget_mb=1e6))
    record = train(tmp_path, tiny_data, [hook], checkpoint=True)
    saved = torch.load(str(tmp_path / 'iter_3.pth'), weights_only=False,
                       map_location='cpu')
    for key in ('step_peak_memory', 'finetune'):
        assert record['meta'][key] == saved['meta'][key]
    assert record['meta']['finetune']['allocation_whole_error'] > 0
    assert set(record['meta']) == {'step_peak_memory', 'finetune'}
    times = saved['message_hub']['log_scalars']['train/time'].data[0]
    assert record['train_time'] == [float(t) for t in times]
    assert len(record['train_time']) == 3


def test_a_run_without_checkpoints_records_beside_a_hook_that_needs_one(
        tiny_data, tmp_path):
    """MMEngine's EMAHook swaps the weights of the checkpoint it is given:
    the record does not ask it, so a probe of a config with it runs."""
    record = train(tmp_path, tiny_data, [dict(type='EMAHook')],
                   checkpoint=False)
    assert record['meta']['step_peak_memory']['peak_increment_mb'] > 0
    assert not [f for f in os.listdir(tmp_path) if f.endswith('.pth')]
