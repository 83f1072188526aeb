"""AutocastErrorHook through a real Runner: what it records, that it
leaves training as it was, that a resume keeps it, and which runs it
refuses."""
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner

from mmseg_hosvd.engine.hooks.autocast_error_hook import AUTOCAST_ERROR_KEY

from ..helpers import tiny_runner_config

#: The 5 fine-tuned layers (the classifier trains too, but is not one).
HEAD = ['decode_head.bottleneck.conv'] + [
    f'decode_head.aspp_modules.{i}.conv' for i in range(4)]

#: Crop side: bfloat16 is slow on CPUs without bfloat16 arithmetic
#: (about a hundred times float32 on AVX2), so the runs are small.
SIZE = 32


def run(tmp_path, tiny_data, measure=True, max_iters=1, resume=False,
        wrapper='AutocastOptimWrapper', norm_eval=True, dropout=0.):
    hooks = [dict(type='CompressConvHook', method='vanilla', num_layers=5,
                  norm_eval=norm_eval)]
    if measure:
        hooks.append(dict(type='AutocastErrorHook'))
    cfg = tiny_runner_config('deeplabv3', str(tmp_path), tiny_data, hooks,
                             max_iters=max_iters, size=SIZE)
    cfg.model.decode_head.dropout_ratio = dropout
    cfg.optim_wrapper.type = wrapper
    if wrapper == 'AutocastOptimWrapper':
        cfg.optim_wrapper.dtype = 'bfloat16'
    cfg.randomness = dict(seed=0)
    cfg.resume = resume
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def test_the_error_is_recorded_per_fine_tuned_layer(tiny_data, tmp_path):
    """The layers the compressed methods' errors sum over."""
    runner = run(tmp_path, tiny_data)
    meta = torch.load(osp.join(str(tmp_path), 'iter_1.pth'),
                      weights_only=False)['meta'][AUTOCAST_ERROR_KEY]
    assert meta['dtype'] == 'bfloat16'
    assert sorted(meta['layers']) == sorted(HEAD)
    for error in meta['layers'].values():
        assert 0 < error < 0.2
    assert meta['relative_error'] == pytest.approx(
        sum(meta['layers'].values()))
    # the layers' gradients together: within the range of their own errors
    assert min(meta['layers'].values()) <= meta['whole_relative_error'] <= (
        max(meta['layers'].values()))
    assert runner.message_hub.get_info(AUTOCAST_ERROR_KEY) == meta


def test_the_measurement_leaves_training_as_it_was(tiny_data, tmp_path):
    """With the norms training and dropout in the head, which the two
    measuring passes would move (statistics, random draws)."""
    plain = run(tmp_path / 'plain', tiny_data, measure=False, max_iters=2,
                norm_eval=False, dropout=0.1)
    measured = run(tmp_path / 'measured', tiny_data, max_iters=2,
                   norm_eval=False, dropout=0.1)
    want = plain.model.state_dict()
    for key, value in measured.model.state_dict().items():
        torch.testing.assert_close(value, want[key], rtol=0, atol=0,
                                   msg=key)


def test_a_resume_keeps_the_record_without_measuring(tiny_data, tmp_path):
    first = run(tmp_path, tiny_data).message_hub.get_info(AUTOCAST_ERROR_KEY)
    resumed = run(tmp_path, tiny_data, max_iters=2, resume=True)
    assert resumed.iter == 2
    assert resumed.message_hub.get_info(AUTOCAST_ERROR_KEY) == first
    meta = torch.load(osp.join(str(tmp_path), 'iter_2.pth'),
                      weights_only=False)['meta'][AUTOCAST_ERROR_KEY]
    assert meta == first


def test_a_run_without_autocast_is_refused(tiny_data, tmp_path):
    with pytest.raises(ValueError, match="train with optim_wrapper type "
                       "'AutocastOptimWrapper', not OptimWrapper"):
        run(tmp_path, tiny_data, wrapper='OptimWrapper')


def test_without_a_plan_every_trained_layer_counts(tiny_data, tmp_path):
    """A run without CompressConvHook: every trainable convolution (here
    all of them) is measured."""
    cfg = tiny_runner_config('deeplabv3', str(tmp_path), tiny_data,
                             [dict(type='AutocastErrorHook')], max_iters=1,
                             size=SIZE)
    cfg.optim_wrapper.type = 'AutocastOptimWrapper'
    runner = Runner.from_cfg(cfg)
    runner.train()
    layers = runner.message_hub.get_info(AUTOCAST_ERROR_KEY)['layers']
    convs = [name for name, module in runner.model.named_modules()
             if isinstance(module, torch.nn.Conv2d)]
    assert sorted(layers) == sorted(convs)
