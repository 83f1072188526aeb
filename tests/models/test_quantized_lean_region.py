"""lean_bits: the transformer parts of the lean region keep codes."""
import pytest
import torch
from torch import nn

from mmseg_hosvd.engine import CompressConvHook
from mmseg_hosvd.models import set_norm_eval_
from mmseg_hosvd.reductions.lean_modules import (
    QuantizedGELU,
    QuantizedLayerNorm,
)
from mmseg_hosvd.utils import RunningModule, SavedTensorMeter

from ..helpers import build_model

#: A block in each preset's 10-layer region, and one that runs before it
#: (Swin's first block of stage 4 runs before its fc2, the first layer).
REGIONS = {
    'segformer': ('backbone.layers.3.1.0', 'backbone.layers.3.0'),
    'swin-upernet': ('backbone.stages.3.blocks.1',
                     'backbone.stages.3.blocks.0'),
}


def lean_pair(model_name, bits):
    """The same weights made lean with and without ``bits``."""
    models = [build_model(model_name) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    plans = [
        CompressConvHook(method='hosvd', num_layers=10, eps=0.8, lean=True,
                         lean_bits=b).apply(m)
        for m, b in zip(models, (None, bits), strict=True)
    ]
    for model in models:
        model.train()
        set_norm_eval_(model)
    return models, plans


@pytest.mark.parametrize('model_name', sorted(REGIONS))
def test_the_regions_layer_norms_and_gelus_keep_codes(model_name):
    (exact, coded), (exact_plan, plan) = lean_pair(model_name, 8)
    inside, before = REGIONS[model_name]
    swapped = [n for n in plan['lean_modules']
               if n not in exact_plan['lean_modules']]
    kinds = {type(coded.get_submodule(n)) for n in swapped}
    assert kinds == {QuantizedLayerNorm, QuantizedGELU}
    assert any(n.startswith(inside) for n in swapped)
    assert not any(n.startswith(before + '.') for n in swapped)
    # no LayerNorm or GELU of the exact lean region was touched
    assert not any(isinstance(m, (QuantizedLayerNorm, QuantizedGELU))
                   for m in exact.modules())
    assert plan['lean_bits'] == 8 and exact_plan['lean_bits'] is None
    assert list(coded.state_dict()) == list(exact.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with SavedTensorMeter.for_model(exact) as exact_meter:
        expected = exact._forward(x)
    with RunningModule(coded) as running, SavedTensorMeter.for_model(
            coded, running.kind) as coded_meter:
        got = coded._forward(x)
    torch.testing.assert_close(got, expected)
    assert coded_meter.bytes < exact_meter.bytes
    # the coded modules are the ones that run (SegFormer's Mix-FFN also
    # holds its activation as ffn.layers.2); no exact one keeps its input
    saved_by = set(coded_meter.by_owner)
    assert {'QuantizedLayerNorm', 'QuantizedGELU'} <= saved_by
    assert not {'LayerNorm', 'GELU'} & saved_by
    # the fine-tuned layers' gradients stay close to the exact region's
    grads = []
    for model, out in ((exact, expected), (coded, got)):
        out.square().mean().backward()
        grads.append(torch.cat([
            p.grad.flatten() for p in model.parameters()
            if p.requires_grad
        ]))
    error = (grads[1] - grads[0]).norm() / grads[0].norm()
    assert 0 < error < 0.05


def test_lean_bits_needs_lean_and_valid_bits():
    with pytest.raises(ValueError, match='lean_bits=8 needs lean=True'):
        CompressConvHook(num_layers=5, lean_bits=8)
    with pytest.raises(ValueError, match='bits must be one of .* got 3'):
        CompressConvHook(num_layers=5, lean=True, lean_bits=3)


def test_a_cnn_region_has_nothing_to_code():
    (exact, coded), (exact_plan, plan) = lean_pair('deeplabv3', 8)
    assert plan['lean_modules'] == exact_plan['lean_modules']
    # the same region: the same outputs from the same stored tensors
    x = torch.randn(2, 3, 64, 64)
    with SavedTensorMeter.for_model(exact) as exact_meter:
        expected = exact._forward(x)
    with SavedTensorMeter.for_model(coded) as coded_meter:
        got = coded._forward(x)
    torch.testing.assert_close(got, expected)
    assert coded_meter.bytes == exact_meter.bytes


class OwnForwardLayerNorm(nn.LayerNorm):
    """A LayerNorm subclass with a forward of its own."""

    def forward(self, x):
        return super().forward(x) * 1.0


def test_a_layer_norm_subclass_and_a_second_application_are_left_alone():
    model = build_model('swin-upernet')
    name = 'backbone.stages.3.blocks.1.norm1'
    old = model.get_submodule(name)
    own = OwnForwardLayerNorm(old.normalized_shape)
    model.backbone.stages[3].blocks[1].norm1 = own
    plan = CompressConvHook(method='hosvd', num_layers=10, lean=True,
                            lean_bits=8).apply(model)
    assert model.get_submodule(name) is own
    assert name not in plan['lean_modules']
    coded = {n: m for n, m in model.named_modules()
             if isinstance(m, QuantizedLayerNorm)}
    again = CompressConvHook(method='hosvd', num_layers=10, lean=True,
                             lean_bits=8).apply(model)
    assert not set(coded) & set(again['lean_modules'])
    assert all(model.get_submodule(n) is m for n, m in coded.items())
