"""Accumulation in whole steps: a batch split into micro-batches trains
exactly like the batch (real Runner, real data, real checkpoints)."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.runner import Runner
from torch import nn

from mmseg_hosvd.engine import SeededIterBasedTrainLoop
from mmseg_hosvd.engine.hooks.activation_memory_hook import HISTORY_KEY
from mmseg_hosvd.engine.seeded_train_loop import average_outputs

from .. import norm_reinit_hook  # noqa: F401  (registers the test hook)
from ..helpers import tiny_runner_config

# live norms, so that every fine-tuned convolution gets a gradient
HOOKS = [
    dict(type='NormReinitTestHook'),
    dict(type='CompressConvHook', method='vanilla', num_layers=5),
    dict(type='ActivationMemoryHook')
]
ITERS = 3


def _config(tiny_data, work_dir, micro, max_iters=ITERS, hooks=HOOKS):
    cfg = tiny_runner_config('fcn', work_dir, tiny_data, hooks,
                             max_iters=max_iters)
    cfg.train_dataloader.batch_size = 2 // micro
    if micro > 1:
        cfg.optim_wrapper.accumulative_counts = micro
        cfg.train_cfg.whole_steps = True
    cfg.default_hooks.checkpoint.interval = 1
    return cfg


def _train(cfg):
    runner = Runner.from_cfg(cfg)
    runner.train()
    lrs = runner.message_hub.get_scalar('train/lr').data[0]
    return runner, dict(runner.model.state_dict()), list(lrs)


def test_two_micro_batches_train_like_the_batch(tiny_data, tmp_path):
    batch_runner, batch, batch_lrs = _train(
        _config(tiny_data, str(tmp_path / 'batch'), 1))
    micro_runner, micro, micro_lrs = _train(
        _config(tiny_data, str(tmp_path / 'micro'), 2))
    assert micro_runner.iter == batch_runner.iter == ITERS
    assert micro_runner.optim_wrapper._inner_count == 2 * ITERS
    assert micro_lrs == batch_lrs
    # activations are stored one micro-batch at a time
    history = [r.message_hub.get_info(HISTORY_KEY)
               for r in (batch_runner, micro_runner)]
    for batch_mb, micro_mb in zip(*(h['analytical'] for h in history),
                                  strict=True):
        assert micro_mb == pytest.approx(batch_mb / 2, rel=1e-12)
    for batch_mb, micro_mb in zip(*(h['measured'] for h in history),
                                  strict=True):
        assert 0.4 * batch_mb < micro_mb < 0.6 * batch_mb
    trained = [n for n, p in batch_runner.model.named_parameters()
               if p.requires_grad]
    for key, value in batch.items():
        torch.testing.assert_close(micro[key], value, rtol=1e-4, atol=1e-6)
    # the compared weights did train: one step fewer leaves them elsewhere
    _, shorter, _ = _train(
        _config(tiny_data, str(tmp_path / 'shorter'), 1, max_iters=ITERS - 1))
    assert trained and all(not torch.allclose(shorter[k], batch[k])
                           for k in trained)


def test_a_resumed_whole_step_run_continues_exactly(tiny_data, tmp_path):
    # (an uninterrupted run of micro-batches of 1 against one stopped after
    # its first step and resumed: the resume replays 2 micro-batches a step)
    micro = 2
    _, whole, _ = _train(_config(tiny_data, str(tmp_path / 'whole'), micro))
    first = _config(tiny_data, str(tmp_path / 'split'), micro)
    first.train_cfg.max_iters = 1
    _train(first)
    assert glob.glob(osp.join(str(tmp_path / 'split'), 'iter_1.pth'))
    # the checkpoint holds the re-initialised norms: not again
    second = _config(tiny_data, str(tmp_path / 'split'), micro,
                     hooks=HOOKS[1:])
    second.resume = True
    runner, resumed, _ = _train(second)
    assert runner.optim_wrapper._inner_count == micro * ITERS
    for key, value in whole.items():
        torch.testing.assert_close(resumed[key], value, rtol=1e-5, atol=1e-7)


def test_whole_steps_must_be_a_bool():
    with pytest.raises(TypeError, match="whole_steps must be True or False, "
                       "got 'yes'"):
        SeededIterBasedTrainLoop(None, {}, max_iters=1, whole_steps='yes')


def test_optimizer_wrappers_that_accumulate_differently_are_refused():
    loop = SeededIterBasedTrainLoop.__new__(SeededIterBasedTrainLoop)
    loop.whole_steps = True

    def wrapper(counts):
        return OptimWrapper(torch.optim.SGD(nn.Linear(1, 1).parameters(),
                                            lr=0.1),
                            accumulative_counts=counts)

    loop._runner = type('R', (), {})()
    loop._runner.optim_wrapper = OptimWrapperDict(
        backbone=wrapper(2), head=wrapper(4))
    with pytest.raises(ValueError, match=r'one accumulative_counts for every '
                       r'optimizer wrapper, got \[2, 4\]'):
        loop.micro_batches()


def test_logged_values_are_averaged_over_micro_batches():
    averaged = average_outputs([dict(loss=torch.tensor(1.0)),
                                dict(loss=torch.tensor(3.0))])
    assert averaged['loss'].item() == 2.0
