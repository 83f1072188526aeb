"""SegFormer-B0 and Swin-T UPerNet presets: real names, execution order."""
import functools

import pytest
from mmseg.registry import MODELS
from torch import nn

from mmseg_hosvd.models import PRESETS, detect_preset
from mmseg_hosvd.selection.layer_presets import CLASSIFIER
from mmseg_hosvd.selection.model_trace import execution_order, trace_model

from ..helpers import build_model, model_config

TRANSFORMERS = ['segformer', 'swin-upernet']


@functools.lru_cache(maxsize=None)
def traced(name):
    """The model and its Linear and Conv2d names, the last executed first
    (classifier left out)."""
    model = build_model(name)
    order = execution_order(trace_model(model), (nn.Conv2d, nn.Linear))
    return model, [n for n in reversed(order) if n != CLASSIFIER]


def kinds(model, names):
    modules = dict(model.named_modules())
    return [type(modules[n]) for n in names]


@pytest.mark.parametrize('num_layers', [5, 10])
@pytest.mark.parametrize('name', TRANSFORMERS)
def test_preset_follows_execution_order_from_the_output(name, num_layers):
    model, order = traced(name)
    preset = PRESETS[name].compress[num_layers]
    assert len(preset) == len(set(preset)) == num_layers
    assert set(preset) <= set(order)
    # nearest the output first, in the order the modules ran
    assert preset == [n for n in order if n in preset]
    # the decode head's last five, then the backbone's last five
    head = [n for n in order if n.startswith('decode_head.')]
    backbone = [n for n in order if n.startswith('backbone.')]
    assert preset[:5] == head[:5]
    assert preset[5:] == backbone[:num_layers - 5]


def test_segformer_presets_are_its_last_layers():
    model, order = traced('segformer')
    preset = PRESETS['segformer'].compress
    assert preset[5] == order[:5] and preset[10] == order[:10]
    # MiT's Mix-FFN is convolutional; nn.MultiheadAttention calls its
    # out_proj functionally, so that Linear never runs as a module
    assert all(issubclass(k, nn.Conv2d) for k in kinds(model, preset[10]))
    out_proj = 'backbone.layers.3.1.1.attn.attn.out_proj'
    assert issubclass(kinds(model, [out_proj])[0], nn.Linear)
    assert out_proj not in order


def test_swin_upernet_10_layers_reach_the_backbones_linear_layers():
    model, order = traced('swin-upernet')
    preset = PRESETS['swin-upernet'].compress[10]
    assert preset[:5] == PRESETS['upernet'].compress[5]
    assert all(issubclass(k, nn.Linear) for k in kinds(model, preset[5:]))
    # what it skips on the way: the PPM branches and the lateral convs
    passed = order[:order.index(preset[-1]) + 1]
    skipped = [n for n in passed if n not in preset]
    assert skipped == [f'decode_head.psp_modules.{i}.1.conv'
                       for i in (3, 2, 1, 0)] + [
                           f'decode_head.lateral_convs.{i}.conv'
                           for i in (2, 1, 0)]


@pytest.mark.parametrize('name', TRANSFORMERS)
def test_radii_are_given_for_the_presets_convolutions(name):
    model, _ = traced(name)
    preset = PRESETS[name]
    for num_layers, names in preset.compress.items():
        convs = [n for n, k in zip(names, kinds(model, names), strict=True)
                 if issubclass(k, nn.Conv2d)]
        assert sorted(preset.radius[num_layers]) == sorted(convs)
        assert all(r >= 2 for r in preset.radius[num_layers].values())


@pytest.mark.parametrize('name,change', [
    ('segformer', dict(embed_dims=64)),  # MiT-B1
    ('segformer', dict(num_layers=[2, 2, 2, 3])),
    ('swin-upernet', dict(embed_dims=128, num_heads=[4, 8, 16, 32])),
    ('swin-upernet', dict(depths=[2, 2, 2, 1])),
])
def test_other_transformer_sizes_are_not_detected(name, change):
    cfg = model_config(name).model
    cfg.backbone.update(change)
    cfg.decode_head.channels = 16
    assert detect_preset(MODELS.build(cfg)) is None
