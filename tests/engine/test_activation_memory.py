"""ActivationMemoryHook's numbers against counts made independently here."""
import math

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmseg.registry import HOOKS

from mmseg_hosvd.engine.hooks.activation_memory_hook import (
    ANALYTICAL_KEY,
    MEASURED_KEY,
)

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
    # the hook metered train_step only during training
    assert 'train_step' not in vars(runner.model)
    recorder = next(h for h in runner.hooks
                    if isinstance(h, RecordConvInputsTestHook))
    hub = runner.message_hub
    analytical = list(hub.get_scalar(ANALYTICAL_KEY).data[0])
    measured = list(hub.get_scalar(MEASURED_KEY).data[0])
    return recorder.inputs, analytical, measured


# FCN r18-d8 on batches of 2 x 3 x 64 x 64 has 8 x 8 maps (output stride
# 8); the decode head is 32 channels wide. The five fine-tuned convolutions
# read, in the order the forward runs them:
INPUT_SHAPES = [
    (2, 512, 8, 8),  # layer4.1.conv1: layer4.0's output
    (2, 512, 8, 8),  # layer4.1.conv2: conv1's output
    (2, 512, 8, 8),  # convs.0: layer4's output
    (2, 32, 8, 8),  # convs.1: convs.0's output
    (2, 512 + 32, 8, 8),  # conv_cat: layer4's output and convs.1's
]
# vanilla stores each input whole, 4 bytes an element; the five are
# distinct tensors, so autograd saves at least these bytes too
VANILLA_BYTES = (3 * 2 * 512 * 64 + 2 * 32 * 64 + 2 * 544 * 64) * 4


def test_vanilla_analytical_is_the_sum_of_conv_input_sizes(
        tiny_data, tmp_path):
    inputs, analytical, measured = run('vanilla', tiny_data, tmp_path)
    assert [[tuple(x.shape) for x in step]
            for step in inputs] == [INPUT_SHAPES] * 3
    assert VANILLA_BYTES == 1081344
    assert analytical == pytest.approx([VANILLA_BYTES / MB] * 3, rel=1e-9)
    assert all(m >= VANILLA_BYTES / MB for m in measured)


def reference_tucker_elements(x, eps):
    """Core plus factor elements of ``x``'s HOSVD-eps, written out here.

    The rank of each mode is the fewest leading singular values of that
    mode's unfolding (an exact float64 SVD) whose squares reach ``eps`` of
    the total; the core has one axis per mode of that rank, each factor is
    (mode size) x (rank).
    """
    ranks = []
    for mode, size in enumerate(x.shape):
        unfolding = x.double().movedim(mode, 0).reshape(size, -1)
        energy = torch.linalg.svdvals(unfolding)**2
        explained = (energy.cumsum(0) / energy.sum()).tolist()
        ranks.append(next(k + 1 for k, e in enumerate(explained)
                          if e >= eps))
    return math.prod(ranks) + sum(n * r for n, r in zip(x.shape, ranks,
                                                        strict=True))


def test_hosvd_analytical_is_core_plus_factors(tiny_data, tmp_path):
    # the exact solver, whose ranks the reference reproduces (the default
    # may take slightly larger ones for the 512-channel modes)
    inputs, analytical, _ = run('hosvd', tiny_data, tmp_path, eps=0.8,
                                solver='eigh')
    expected = [
        sum(reference_tucker_elements(x, 0.8) for x in step) * 4 / MB
        for step in inputs
    ]
    assert analytical == pytest.approx(expected, rel=1e-9)
    # and it is a compression: well below the whole inputs
    assert all(a < VANILLA_BYTES / MB / 2 for a in analytical)


def test_hosvd_measured_is_below_vanilla(tiny_data, tmp_path):
    _, _, vanilla = run('vanilla', tiny_data, tmp_path / 'vanilla')
    _, _, compressed = run('hosvd', tiny_data, tmp_path / 'hosvd', eps=0.8)
    assert max(compressed) < min(vanilla)
