"""WeightChangeHook in real Runners: learned layers from decayed-only ones."""
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmseg.registry import HOOKS
from torch import nn

from mmseg_hosvd.engine.hooks import WeightChangeHook
from mmseg_hosvd.engine.hooks.unwrap import unwrap_model
from mmseg_hosvd.engine.hooks.weight_change_hook import DecayOnlyPath
from mmseg_hosvd.models import PRESETS
from mmseg_hosvd.protocol.reporting import (
    checkpoint_record,
    format_test_report,
)

from .. import norm_reinit_hook  # noqa: F401  (registers the test hook)
from ..helpers import tiny_runner_config

#: A fine-tuned DeepLabV3 convolution whose output the test multiplies by 0.
SILENCED = 'decode_head.aspp_modules.1.conv'


@HOOKS.register_module()
class SilenceConvTestHook(Hook):
    """Multiplies one convolution's output by zero: its gradient is zero."""

    priority = 'NORMAL'

    def before_train(self, runner):
        conv = unwrap_model(runner.model).get_submodule(SILENCED)
        conv.register_forward_hook(lambda module, args, out: out * 0)


def train(cfg):
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner, next(h for h in runner.hooks
                        if isinstance(h, WeightChangeHook))


def test_every_fine_tuned_conv_moves_by_its_gradient(tiny_data, tmp_path):
    cfg = tiny_runner_config('fcn', str(tmp_path), tiny_data, [
        dict(type='NormReinitTestHook'),
        dict(type='CompressConvHook', method='hosvd', eps=0.8, num_layers=5)
    ])
    assert cfg.default_hooks.weight_change.type == 'WeightChangeHook'
    runner, hook = train(cfg)
    record = torch.load(osp.join(str(tmp_path), 'iter_2.pth'),
                        weights_only=False)['meta']['weight_change']
    layers = record['layers']
    # the fine-tuned convolutions and the classifier, nothing frozen
    assert set(layers) == set(PRESETS['fcn'].compress[5]) | {
        'decode_head.conv_seg'}
    assert 'backbone.layer4.0.conv2' not in layers
    for name, layer in layers.items():
        assert layer['relative_change'] > 0, name
        assert 0 < layer['grad_share'] <= 1, name
    assert record['min_grad_share'] == min(
        v['grad_share'] for v in layers.values())
    assert record['since_iter'] == 0
    assert hook.record()['layers'] == layers  # no step after the save
    test_record = checkpoint_record('configs/fcn/fcn_r18-d8_x.py',
                                    osp.join(str(tmp_path), 'iter_2.pth'),
                                    dict(mIoU=1.0, mAcc=2.0))
    assert test_record['weight_change'] == record
    share = record['min_grad_share']
    over_decay = record['min_change_over_decay']
    assert over_decay == min(v['change_over_decay'] for v in layers.values())
    assert (f'least change over what weight decay alone gives '
            f'{over_decay:.1f}x, least gradient share of the update '
            f'{share:.3f}' in format_test_report(test_record))


def test_a_layer_moved_by_weight_decay_alone_has_no_gradient_share(
        tiny_data, tmp_path):
    cfg = tiny_runner_config('deeplabv3', str(tmp_path), tiny_data, [
        dict(type='CompressConvHook', method='vanilla', num_layers=5),
        dict(type='SilenceConvTestHook')
    ])
    _, hook = train(cfg)
    layers = hook.record()['layers']
    silenced = layers[SILENCED]
    assert silenced['relative_change'] > 0  # weight decay shrank it
    assert silenced['grad_sum'] == 0 and silenced['grad_share'] == 0
    assert hook.record()['min_grad_share'] == 0
    # Two steps from random weights give the ASPP branches gradients about
    # as large as their decay (shares 0.46-0.52 on the tiny target data), so
    # what tells them from the silenced layer is a clearly positive share
    # and a move well beyond the decay-only path (1.27-1.41x of it).
    others = {k: v for k, v in layers.items() if k != SILENCED}
    assert min(v['grad_share'] for v in others.values()) > 0.25
    assert min(v['change_over_decay'] for v in others.values()) > 1.2
    # it moved as weight decay alone moves a weight (SGD momentum); the
    # tolerance is float32 rounding of W_end - W_start
    assert silenced['change_over_decay'] == pytest.approx(1., rel=1e-3)
    assert hook.record()['min_change_over_decay'] == pytest.approx(
        1., rel=1e-3)


@pytest.mark.parametrize('make', [
    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.3,
                              weight_decay=0.01, nesterov=False),
    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.8, weight_decay=0.02,
                              nesterov=True),
    lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.01),
    lambda p: torch.optim.AdamW(p, lr=0.1, weight_decay=0.05),
])
def test_decay_only_path_follows_the_optimizer(make):
    weight = torch.nn.Parameter(torch.randn(5, dtype=torch.float64))
    start = weight.detach().clone()
    optimizer = make([weight])
    path = DecayOnlyPath()
    for step in range(7):
        for group in optimizer.param_groups:
            group['lr'] = 0.1 / (step + 1)  # a schedule
        weight.grad = torch.zeros_like(weight)
        path.step(optimizer, optimizer.param_groups[0])
        optimizer.step()
    expected = float((weight.detach() - start).norm() / start.norm())
    assert path.relative_change == pytest.approx(expected, rel=1e-9)


def test_decay_only_path_declines_other_optimizers():
    weight = torch.nn.Parameter(torch.randn(3))
    optimizer = torch.optim.Adam([weight], weight_decay=0.1)
    path = DecayOnlyPath()
    path.step(optimizer, optimizer.param_groups[0])
    assert path.relative_change is None


def test_gradient_share_of_a_layer_moved_by_gradient_and_decay():
    """Two SGD steps (lr 0.1, weight decay 0.01, no momentum) of a 1x1
    convolution with W = (3, 4), ||W|| = 5, and the gradient (0.6, 0.8),
    ||g|| = 1, both times: the gradient is parallel to W, so the first step
    scales W by 1 - 0.1 * (0.2 + 0.01) = 0.979 (||W|| = 4.895)."""
    model = nn.Sequential(nn.Conv2d(2, 1, 1, bias=False))
    weight = model[0].weight
    with torch.no_grad():
        weight.copy_(torch.tensor([3., 4.]).reshape(1, 2, 1, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1,
                                weight_decay=0.01)
    runner = SimpleNamespace(model=model, iter=0,
                             optim_wrapper=SimpleNamespace(
                                 optimizer=optimizer))
    hook = WeightChangeHook()
    hook.before_train(runner)
    for _ in range(2):
        weight.grad = torch.tensor([0.6, 0.8]).reshape(1, 2, 1, 1)
        optimizer.step()
    layer = hook.record()['layers']['0']
    grad_sum = 0.1 * 1 + 0.1 * 1
    decay_sum = 0.1 * 0.01 * 5 + 0.1 * 0.01 * 4.895
    assert layer['grad_sum'] == pytest.approx(grad_sum, rel=1e-6)
    assert layer['decay_sum'] == pytest.approx(decay_sum, rel=1e-6)
    assert layer['grad_share'] == pytest.approx(
        grad_sum / (grad_sum + decay_sum), rel=1e-6)
