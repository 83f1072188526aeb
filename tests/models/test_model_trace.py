"""One traced forward describes the model for every selection rule."""
import pytest
import torch
from torch import nn

from mmseg_hosvd.engine import CompressConvHook
from mmseg_hosvd.models import trace_model
from mmseg_hosvd.selection.model_trace import (
    execution_order,
    modules_after,
    shared_input_groups,
)

from ..helpers import build_model


class Branches(nn.Module):
    """x -> relu -> (a, b read the same tensor) -> c reads a + b."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 1)
        self.relu = nn.ReLU()
        self.a = nn.Conv2d(4, 4, 1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.c = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        x = self.relu(self.stem(x))
        y = self.relu(self.bn(self.a(x) + self.b(x)))
        return self.c(y)


def test_rules_are_functions_of_the_trace():
    model = Branches()
    trace = trace_model(model, input_shape=(1, 3, 8, 8))
    assert execution_order(trace) == ['stem', 'a', 'b', 'c']
    assert shared_input_groups(trace, ['a', 'b', 'c']) == [['a', 'b']]
    assert shared_input_groups(trace, ['b', 'c']) == []
    assert modules_after(trace, ['b'], (nn.ReLU, nn.BatchNorm2d)) == [
        'bn', 'relu'
    ]
    assert modules_after(trace, ['stem'], (nn.ReLU, )) == ['relu']
    assert modules_after(trace, ['nothing'], (nn.ReLU, )) == []
    assert model.training  # the mode is restored


def test_capture_keeps_the_inputs_in_the_current_mode():
    model = Branches().train()
    x = torch.randn(2, 3, 8, 8)
    trace = trace_model(model, x, capture=['stem', 'c'], eval_mode=False)
    torch.testing.assert_close(trace.inputs['stem'], x)
    assert trace.inputs['c'].shape == (2, 4, 8, 8)
    assert not trace.inputs['c'].requires_grad
    assert model.bn.num_batches_tracked == 1  # ran in training mode


@pytest.mark.parametrize('model_name,options', [
    ('deeplabv3', dict(method='hosvd', num_layers=10, lean=True)),
    ('fcn', dict(method='hosvd', num_layers=5, preset=None, lean=True)),
])
def test_the_hook_runs_one_forward(model_name, options, monkeypatch):
    model = build_model(model_name)
    calls = []
    forward = model._forward
    monkeypatch.setattr(model, '_forward',
                        lambda *a, **k: calls.append(1) or forward(*a, **k))
    plan = CompressConvHook(**options).apply(model)
    assert len(calls) == 1
    assert plan['lean_modules'] and plan['num_compressed'] > 0
