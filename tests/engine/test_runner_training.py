"""Real MMEngine Runners: train 2 iterations, validate, save, resume."""
import json
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner, load_checkpoint
from mmseg.registry import HOOKS, MODELS

from mmseg_hosvd.engine import ChunkedLossHook, FrozenPrefixHook
from mmseg_hosvd.engine.hooks.activation_memory_hook import (
    ANALYTICAL_KEY,
    MEASURED_KEY,
)
from mmseg_hosvd.models import PRESETS, CompressedConv2d
from mmseg_hosvd.protocol.matrix import config_path

from ..helpers import CONFIGS, MODEL_NAMES, tiny_runner_config


def hooks(method, num_layers=5, **kwargs):
    return [
        dict(type='CompressConvHook', method=method, num_layers=num_layers,
             **kwargs),
        dict(type='ActivationMemoryHook')
    ]


def compressed(model):
    return {
        n: m
        for n, m in model.named_modules() if isinstance(m, CompressedConv2d)
    }


@HOOKS.register_module()
class SnapshotParamsTestHook(Hook):
    """Copies every parameter once the fine-tuning set-up is in place."""

    priority = 'LOW'

    def before_train(self, runner):
        self.before = {
            n: p.detach().clone()
            for n, p in runner.model.named_parameters()
        }


def train(cfg):
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


@pytest.mark.parametrize('model_name', MODEL_NAMES)
def test_each_model_trains_and_validates_with_hosvd(model_name, tiny_data,
                                                    tmp_path):
    cfg = tiny_runner_config(model_name, str(tmp_path), tiny_data,
                             hooks('hosvd', eps=0.8))
    runner = train(cfg)
    expected = set(PRESETS[model_name].compress[5])
    assert set(compressed(runner.model)) == expected
    metrics = runner.val_loop.run()
    assert {'mIoU', 'mAcc', 'aAcc'} <= set(metrics)
    checkpoint = torch.load(
        osp.join(str(tmp_path), 'iter_2.pth'), weights_only=False)
    memory = checkpoint['meta']['activation_memory']
    assert memory['iterations'] == 2
    assert 0 < memory['analytical_mb']['peak'] < memory['measured_mb']['peak']
    assert checkpoint['meta']['finetune']['method'] == 'hosvd'


@pytest.mark.parametrize('model_name', MODEL_NAMES)
def test_each_model_trains_with_its_protocol_config_and_exact_reductions(
        model_name, tiny_data, tmp_path):
    """The protocol's own hooks (HOSVD lean, frozen prefix and chunked
    loss, one image at a time) on each model, in a Runner."""
    config = config_path(model_name, 'finetune', 'hosvd-eps0.8-lean', 5,
                         root=CONFIGS)
    runner = train(tiny_runner_config(model_name, str(tmp_path), tiny_data,
                                      config=config))
    prefix = next(h for h in runner.hooks if isinstance(h, FrozenPrefixHook))
    chunked = next(h for h in runner.hooks if isinstance(h, ChunkedLossHook))
    assert prefix.modules and chunked.heads == ['decode_head']
    assert {'mIoU', 'mAcc'} <= set(runner.val_loop.run())


@pytest.mark.parametrize('method', ['vanilla', 'gradient_filter', 'svd',
                                    'hosvd'])
def test_each_method_trains_only_the_fine_tuned_part(method, tiny_data,
                                                     tmp_path):
    cfg = tiny_runner_config(
        'deeplabv3', str(tmp_path), tiny_data,
        hooks(method) + [dict(type='SnapshotParamsTestHook')])
    runner = train(cfg)
    before = next(h for h in runner.hooks
                  if isinstance(h, SnapshotParamsTestHook)).before
    trainable = set(PRESETS['deeplabv3'].compress[5] +
                    ['decode_head.conv_seg'])
    for name, param in runner.model.named_parameters():
        owner = name.rsplit('.', 1)[0]
        assert param.requires_grad == (owner in trainable), name
        assert torch.equal(param, before[name]) != param.requires_grad, name
    with open(osp.join(str(tmp_path), 'activation_memory.json')) as f:
        summary = json.load(f)
    assert summary['iterations'] == 2
    assert summary['layers'] == PRESETS['deeplabv3'].compress[5]
    hub = runner.message_hub
    assert len(hub.get_scalar(ANALYTICAL_KEY).data[0]) == 2
    assert len(hub.get_scalar(MEASURED_KEY).data[0]) == 2
    assert bool(compressed(runner.model)) == (method != 'vanilla')


def test_fine_tuned_checkpoint_loads_into_plain_mmseg(tiny_data, tmp_path):
    cfg = tiny_runner_config('pspnet', str(tmp_path), tiny_data,
                             hooks('hosvd', num_layers=10))
    runner = train(cfg)
    trained = runner.model.eval()
    plain = MODELS.build(cfg.model)
    load_checkpoint(plain, osp.join(str(tmp_path), 'iter_2.pth'),
                    strict=True)
    plain.eval()
    assert not compressed(plain)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(plain._forward(x), trained._forward(x))


def test_resume_continues_with_compression(tiny_data, tmp_path):
    first = tiny_runner_config('fcn', str(tmp_path), tiny_data,
                               hooks('hosvd'), max_iters=2)
    train(first)
    second = tiny_runner_config('fcn', str(tmp_path), tiny_data,
                                hooks('hosvd'), max_iters=4)
    second.resume = True
    runner = Runner.from_cfg(second)
    runner.train()
    assert runner.iter == 4
    assert set(compressed(runner.model)) == set(PRESETS['fcn'].compress[5])
    ranks = [m.last_stored.ranks for m in compressed(runner.model).values()]
    assert all(r is not None and len(r) == 4 for r in ranks)
    checkpoint = torch.load(
        osp.join(str(tmp_path), 'iter_4.pth'), weights_only=False)
    # the history of the first run is restored with the MessageHub state
    assert checkpoint['meta']['activation_memory']['iterations'] == 4
