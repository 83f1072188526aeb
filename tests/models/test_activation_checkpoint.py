"""Activation checkpointing of the fine-tuned region behind a frozen
prefix: exact gradients, less stored, a real Runner trains with it."""
import pytest
import torch
from mmengine.runner import Runner
from torch import nn

from mmseg_hosvd.engine import ActivationCheckpointHook, CompressConvHook
from mmseg_hosvd.models import PRESETS, set_norm_eval_
from mmseg_hosvd.selection.conv_memory_counter import ConvMemoryCounter
from mmseg_hosvd.utils import SavedTensorMeter

from ..helpers import build_model, tiny_runner_config


def fine_tuned(model_name, num_layers, method='vanilla', **options):
    model = build_model(model_name)
    for module in model.modules():  # mmseg zero-initialises residual norms
        if isinstance(module, nn.BatchNorm2d):
            nn.init.uniform_(module.weight, 0.5, 1.5)
    CompressConvHook(method=method, num_layers=num_layers,
                     **options).apply(model)
    return model


@pytest.mark.parametrize('num_layers,expected', [
    (5, ['decode_head']), (10, ['backbone.layer4', 'decode_head'])])
def test_the_blocks_holding_trainable_layers(num_layers, expected):
    model = fine_tuned('deeplabv3', num_layers)
    assert ActivationCheckpointHook().apply(model) == expected


@pytest.mark.parametrize('method,options', [('vanilla', {}),
                                            ('hosvd', dict(eps=1.0))])
def test_same_gradients_and_less_stored(method, options):
    plain = fine_tuned('deeplabv3', 10, method, **options)
    recomputed = fine_tuned('deeplabv3', 10, method, **options)
    recomputed.load_state_dict(plain.state_dict())
    ActivationCheckpointHook().apply(recomputed)
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    stored, grads = [], []
    for model in (plain, recomputed):
        model.double().train()
        set_norm_eval_(model)
        with SavedTensorMeter.for_model(model) as meter:
            out = model._forward(x)
        out.square().sum().backward()
        stored.append(meter.bytes)
        grads.append({n: p.grad for n, p in model.named_parameters()
                      if p.requires_grad})
    assert stored[1] < stored[0] / 2
    for name, grad in grads[0].items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(grads[1][name], grad, msg=name)


@pytest.mark.parametrize('method,options', [('vanilla', {}),
                                            ('hosvd', dict(eps=0.8))])
def test_recomputed_forwards_are_not_counted_twice(method, options):
    """The analytical count is what the layers need; backward's recompute
    of the checkpointed blocks does not add to it."""
    counted = []
    for checkpointed in (False, True):
        torch.manual_seed(0)
        model = fine_tuned('deeplabv3', 10, method, **options)
        if checkpointed:
            ActivationCheckpointHook().apply(model)
        model.train()
        set_norm_eval_(model)
        counter = ConvMemoryCounter(model, PRESETS['deeplabv3'].compress[10])
        torch.manual_seed(1)
        model._forward(torch.randn(2, 3, 64, 64)).square().sum().backward()
        counted.append(counter.elements)
        counter.remove()
    assert counted[0] > 0 and counted[1] == counted[0]


def test_unknown_module_is_named():
    with pytest.raises(ValueError, match="no module named 'decode_haed'"):
        ActivationCheckpointHook(modules=['decode_haed']).apply(
            fine_tuned('fcn', 5))


def test_a_runner_trains_with_it(tiny_data, tmp_path):
    cfg = tiny_runner_config('fcn', str(tmp_path), tiny_data, [
        dict(type='CompressConvHook', method='hosvd', num_layers=5),
        dict(type='ActivationCheckpointHook'),
        dict(type='ActivationMemoryHook')
    ])
    runner = Runner.from_cfg(cfg)
    runner.train()
    hook = next(h for h in runner.hooks
                if isinstance(h, ActivationCheckpointHook))
    assert hook.modules == ['backbone.layer4', 'decode_head']


def test_warm_started_hosvd_recomputes_the_forwards_ranks():
    """A HOSVD layer's warm start changes with every forward: the
    recomputation in backward must start where the forward did (or it
    finds other ranks and checkpointing fails), and the next step must
    start from the forward's vectors."""
    from mmseg_hosvd.models import Conv2dHOSVD
    from mmseg_hosvd.reductions.activation_checkpoint import (
        checkpoint_modules_,
    )

    from ..ops.spectra import matrix_with_spectrum

    def inputs(seed):  # 512 channels; rank 16 at eps 0.8: warm-started
        matrix = matrix_with_spectrum([0.95**i for i in range(2 * 49)], 512,
                                      torch.float32, seed).t()
        return matrix.reshape(512, 2, 7, 7).transpose(0, 1).contiguous()

    plain = nn.Sequential(Conv2dHOSVD(512, 8, 1, eps=0.8))
    recomputed = nn.Sequential(Conv2dHOSVD(512, 8, 1, eps=0.8))
    recomputed.load_state_dict(plain.state_dict())
    checkpoint_modules_(recomputed, ['0'])
    base = inputs(0)
    for step in range(3):
        x = base + 0.3 * inputs(step + 1)
        grads = []
        for model in (plain, recomputed):
            model.zero_grad()
            model(x).square().sum().backward()
            grads.append(model[0].weight.grad)
        torch.testing.assert_close(grads[1], grads[0])
        (kept, ) = recomputed[0].warm_start.snapshot().values()
        assert kept.shape[1] <= 512 / 8  # narrow enough to be started from
        for kept, other in zip(plain[0].warm_start.snapshot().values(),
                               recomputed[0].warm_start.snapshot().values(),
                               strict=True):
            torch.testing.assert_close(kept, other)


def test_one_module_name_is_one_name():
    """A string is one module, not a list of one-letter names."""
    hook = ActivationCheckpointHook(modules='decode_head')
    assert hook.requested == ['decode_head']
    with pytest.raises(ValueError, match='modules must be a module name or '
                       'a list of module names, got 3'):
        ActivationCheckpointHook(modules=3)
