"""ActivationMemoryHook's numbers against counts made independently here."""
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmseg.registry import HOOKS

from mmseg_hosvd.engine.hooks.activation_memory_hook import (
    ANALYTICAL_KEY,
    MEASURED_KEY,
)
from mmseg_hosvd.ops import hosvd

from ..helpers import tiny_runner_config

MB = 2**20


@HOOKS.register_module()
class RecordConvInputsTestHook(Hook):
    """Keeps the inputs of the given convolutions at every training forward."""

    priority = 'LOW'

    def __init__(self, layers):
        self.layers = layers
        self.inputs = []

    def before_train(self, runner):
        for name in self.layers:
            runner.model.get_submodule(name).register_forward_hook(
                self._record)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.inputs.append([])

    def _record(self, module, inputs, output):
        if module.training and torch.is_grad_enabled():
            self.inputs[-1].append(inputs[0].detach().clone())


LAYERS = [
    'decode_head.conv_cat.conv', 'decode_head.convs.1.conv',
    'decode_head.convs.0.conv', 'backbone.layer4.1.conv2',
    'backbone.layer4.1.conv1'
]


def run(method, tiny_data, tmp_path, **kwargs):
    hooks = [
        dict(type='CompressConvHook', method=method, num_layers=5, **kwargs),
        dict(type='ActivationMemoryHook'),
        dict(type='RecordConvInputsTestHook', layers=LAYERS)
    ]
    cfg = tiny_runner_config('fcn', str(tmp_path), tiny_data, hooks,
                             max_iters=3)
    runner = Runner.from_cfg(cfg)
    runner.train()
    recorder = next(h for h in runner.hooks
                    if isinstance(h, RecordConvInputsTestHook))
    hub = runner.message_hub
    analytical = list(hub.get_scalar(ANALYTICAL_KEY).data[0])
    measured = list(hub.get_scalar(MEASURED_KEY).data[0])
    return recorder.inputs, analytical, measured


def test_vanilla_analytical_is_the_sum_of_conv_input_sizes(
        tiny_data, tmp_path):
    inputs, analytical, measured = run('vanilla', tiny_data, tmp_path)
    assert len(inputs) == 3 and all(len(i) == 5 for i in inputs)
    expected = [sum(x.numel() for x in step) * 4 / MB for step in inputs]
    assert analytical == pytest.approx(expected, rel=1e-9)
    # autograd keeps at least the distinct conv inputs (plus BN, ReLU, ...)
    distinct = [
        sum(x.numel() * 4 for x in step) / MB for step in inputs
    ]
    assert all(m >= d for m, d in zip(measured, distinct))


def test_hosvd_analytical_is_core_plus_factors(tiny_data, tmp_path):
    inputs, analytical, _ = run('hosvd', tiny_data, tmp_path, eps=0.8)
    expected = []
    for step in inputs:
        total = 0
        for x in step:
            core, factors = hosvd(x, eps=0.8)
            total += core.numel() + sum(f.numel() for f in factors)
        expected.append(total * 4 / MB)
    assert analytical == pytest.approx(expected, rel=1e-9)


def test_hosvd_measured_is_below_vanilla(tiny_data, tmp_path):
    _, _, vanilla = run('vanilla', tiny_data, tmp_path / 'vanilla')
    _, _, compressed = run('hosvd', tiny_data, tmp_path / 'hosvd', eps=0.8)
    assert max(compressed) < min(vanilla)
