"""Reference layer lists, tracing for other models, and clear errors."""
import warnings

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import nn

from mmseg_hosvd.checkpoints.loading import load_local_checkpoint
from mmseg_hosvd.engine import CompressConvHook
from mmseg_hosvd.models import (
    PRESETS,
    CompressedConv2d,
    Conv2dGradFilter,
    Conv2dHOSVD,
    detect_preset,
    last_convs,
    select_layers,
    set_norm_eval_,
)
from mmseg_hosvd.protocol.matrix import config_path

from ..helpers import CONFIGS, CONV_PRESETS, MODEL_NAMES, build_model


def compressed_names(model):
    return {
        n
        for n, m in model.named_modules() if isinstance(m, CompressedConv2d)
    }


@pytest.mark.parametrize('model_name', MODEL_NAMES)
def test_protocol_models_are_detected(model_name):
    assert detect_preset(build_model(model_name)) == model_name


@pytest.mark.parametrize('model_name,num_layers', CONV_PRESETS)
def test_hook_converts_exactly_the_reference_layers(model_name, num_layers):
    model = build_model(model_name)
    plain_keys = list(model.state_dict())
    params_before = dict(model.named_parameters())
    plan = CompressConvHook(method='hosvd', num_layers=num_layers).apply(model)
    preset = PRESETS[model_name]
    assert compressed_names(model) == set(preset.compress[num_layers])
    assert plan['compressed'] == preset.compress[num_layers]
    expected_trainable = (preset.compress[num_layers] +
                          preset.trainable[num_layers] +
                          ['decode_head.conv_seg'])
    for name, param in model.named_parameters():
        owner = name.rsplit('.', 1)[0]
        inside = any(owner == t or owner.startswith(t + '.')
                     for t in expected_trainable)
        assert param.requires_grad == inside, name
        assert param is params_before[name]
    assert list(model.state_dict()) == plain_keys


def test_vanilla_freezes_the_same_layers_without_converting():
    hosvd = build_model('deeplabv3')
    vanilla = build_model('deeplabv3')
    CompressConvHook(method='hosvd', num_layers=10).apply(hosvd)
    CompressConvHook(method='vanilla', num_layers=10).apply(vanilla)
    assert not compressed_names(vanilla)
    trainable = [n for n, p in hosvd.named_parameters() if p.requires_grad]
    assert trainable == [
        n for n, p in vanilla.named_parameters() if p.requires_grad
    ]


def test_gradient_filter_uses_reference_radii():
    model = build_model('upernet')
    CompressConvHook(method='gradient_filter', num_layers=10).apply(model)
    radii = {
        n: m.radius
        for n, m in model.named_modules() if isinstance(m, Conv2dGradFilter)
    }
    assert radii == PRESETS['upernet'].radius[10]
    assert radii['decode_head.fpn_convs.1.conv'] == 4


def test_tracing_deeplabv3_finds_the_aspp_reference_layers():
    """The reference list of DeepLabV3 is its last 5 convolutions."""
    model = build_model('deeplabv3')
    traced = last_convs(model, 5)
    assert traced[0] == 'decode_head.bottleneck.conv'
    assert set(traced) == set(PRESETS['deeplabv3'].compress[5])
    assert last_convs(model, 6)[-1] == 'decode_head.image_pool.1.conv'


@MODELS.register_module()
class TwoConvTestHead(BaseDecodeHead):
    """A user's own head: two 3 x 3 convolutions then the classifier."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.first = nn.Conv2d(self.in_channels, self.channels, 3, padding=1)
        self.second = nn.Conv2d(self.channels, self.channels, 3, padding=1)

    def forward(self, inputs):
        x = self._transform_inputs(inputs)
        return self.cls_seg(self.second(self.first(x).relu()).relu())


def users_model():
    return MODELS.build(
        dict(
            type='EncoderDecoder',
            data_preprocessor=dict(type='SegDataPreProcessor'),
            backbone=dict(
                type='MobileNetV2', widen_factor=0.5, out_indices=(5, 6)),
            decode_head=dict(
                type='TwoConvTestHead',
                in_channels=160,
                in_index=1,
                channels=16,
                num_classes=3)))


def test_users_model_gets_the_last_n_convolutions_traced():
    model = users_model()
    assert detect_preset(model) is None
    plan = CompressConvHook(method='hosvd', num_layers=4).apply(model)
    assert plan['compressed'] == [
        'decode_head.second', 'decode_head.first',
        'backbone.layer7.0.conv.2.conv', 'backbone.layer7.0.conv.1.conv'
    ]
    assert compressed_names(model) == set(plan['compressed'])
    out = model._forward(torch.randn(2, 3, 64, 64))
    out.sum().backward()
    assert model.decode_head.first.weight.grad is not None
    assert model.backbone.layer7[0].conv[0].conv.weight.grad is None


def test_more_layers_than_the_model_has():
    model = users_model()
    total = sum(isinstance(m, nn.Conv2d) for m in model.modules()) - 1
    with pytest.raises(ValueError, match=f'num_layers={total + 1} but the '
                       f'model has only {total} convolutions'):
        select_layers(model, num_layers=total + 1)


def test_unknown_layer_name_suggests_close_names():
    model = build_model('pspnet')
    with pytest.raises(ValueError,
                       match=r"no module named 'decode_head.botleneck.conv'.*"
                       r'decode_head.bottleneck.conv'):
        CompressConvHook(
            layers=['decode_head.botleneck.conv']).apply(model)


def test_one_layer_name_may_be_given_as_a_string():
    """As MMEngine's ``init_cfg`` reads ``layer='Conv2d'``: one name, not
    one module per character."""
    plan = CompressConvHook(method='vanilla',
                            layers='decode_head.bottleneck.conv',
                            trainable='decode_head.bottleneck.bn').apply(
                                build_model('pspnet'))
    assert plan.compressed == ['decode_head.bottleneck.conv']
    assert plan.num_layers == 1
    assert 'decode_head.bottleneck.bn' in plan.trainable_modules
    assert select_layers(build_model('pspnet'),
                         layers='decode_head.bottleneck.conv').compress == [
                             'decode_head.bottleneck.conv']


def test_layer_that_is_not_a_convolution():
    model = build_model('pspnet')
    with pytest.raises(ValueError, match="'decode_head.bottleneck.bn' is a "
                       'BatchNorm2d, not an nn.Conv2d'):
        CompressConvHook(layers=['decode_head.bottleneck.bn']).apply(model)


def test_classifier_cannot_be_compressed():
    with pytest.raises(ValueError, match='always trained and never'):
        CompressConvHook(layers=['decode_head.conv_seg']).apply(
            build_model('fcn'))


def test_unknown_trainable_module():
    with pytest.raises(ValueError, match="no module named 'decode_head.x'"):
        CompressConvHook(num_layers=5, trainable=['decode_head.x']).apply(
            build_model('fcn'))


@pytest.mark.parametrize('kwargs,match', [
    (dict(method='lowrank', num_layers=5), "unknown method 'lowrank'"),
    (dict(num_layers=5, eps=0.0), r'eps must be in \(0, 1\], got 0.0'),
    (dict(num_layers=5, eps=1.2), r'eps must be in \(0, 1\], got 1.2'),
    (dict(method='gradient_filter', num_layers=5, radius=0),
     'radius must be an int >= 1, got 0'),
    (dict(), 'exactly one of num_layers and layers'),
    (dict(num_layers=5, layers=['a']), 'exactly one of num_layers and layers'),
    (dict(layers=[]), r'layers=\[\] selects no layer to fine-tune; to train '
     'only the classifier, give num_layers=0 instead of layers'),
    (dict(layers=('decode_head.conv', 3)), r'layers must be a module name '
     r"or a list of module names, got \('decode_head.conv', 3\)"),
    (dict(num_layers=5, trainable=7),
     'trainable must be a module name or a list of module names, got 7'),
    (dict(num_layers=5, lean=True, lean_eps=dict(bn=0.8)),
     r"lean_eps has unknown keys \['bn'\]; use \['norm', 'classifier'\]"),
    (dict(num_layers=5, lean=True, lean_eps=dict(norm=1.5)),
     r"lean_eps\['norm'\]: eps must be in \(0, 1\], got 1.5"),
    (dict(num_layers=5, lean=True, lean_eps=dict(norm=None)),
     r"lean_eps\['norm'\]: eps must be a number in \(0, 1\], got None "
     r"\(only \['classifier'\] may be None: stored whole\)"),
    (dict(num_layers=5, solver='lapack'),
     r"solver must be one of \('auto', 'eigh', 'ritz'\), got 'lapack'"),
    (dict(method='svd', num_layers=5, solver='eigh'),
     "solver='eigh' applies to the methods .* and to the lean region, got "
     "method='svd' without lean"),
])
def test_hook_arguments_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CompressConvHook(**kwargs)


def test_solver_reaches_every_compressed_convolution():
    model = build_model('pspnet')
    plan = CompressConvHook(num_layers=5, solver='eigh').apply(model)
    solvers = {model.get_submodule(n).solver for n in plan['compressed']}
    assert solvers == {'eigh'} and plan['solver'] == 'eigh'


def test_warm_start_reaches_every_compressed_convolution():
    from mmseg_hosvd.methods import get_method
    model = build_model('pspnet')
    plan = CompressConvHook(num_layers=5, warm_start=False).apply(model)
    assert plan['warm_start'] is False
    assert all(model.get_submodule(n).warm_start is None
               for n in plan['compressed'])
    assert get_method('hosvd').label(plan.options) == 'eps=0.8, cold start'
    assert get_method('hosvd').tag(plan.options) == 'hosvd-eps0.8-cold'
    with pytest.raises(ValueError, match='warm_start must be True or False, '
                       'got 1'):
        CompressConvHook(num_layers=5, warm_start=1)


@pytest.mark.parametrize('method', ['hosvd', 'svd'])
def test_warm_start_reaches_the_lean_classifier(method):
    model = build_model('deeplabv3')
    CompressConvHook(method=method, num_layers=5, lean=True,
                     warm_start=False).apply(model)
    assert model.get_submodule('decode_head.conv_seg').warm_start is None
    model = build_model('deeplabv3')
    CompressConvHook(method=method, num_layers=5, lean=True).apply(model)
    assert model.get_submodule('decode_head.conv_seg').warm_start is not None


@pytest.mark.parametrize('method', ['hosvd', 'svd'])
def test_solver_reaches_the_lean_region(method):
    from mmseg_hosvd.reductions.lean_modules import LeanFrozenBatchNorm2d
    model = build_model('deeplabv3')
    plan = CompressConvHook(method=method, num_layers=5, lean=True,
                            solver='eigh').apply(model)
    lean = [model.get_submodule(n) for n in plan['lean_modules']]
    solvers = {m.solver for m in lean
               if isinstance(m, (LeanFrozenBatchNorm2d, Conv2dHOSVD))}
    assert solvers == {'eigh'}
    assert model.get_submodule('decode_head.conv_seg').solver == 'eigh'


def test_negative_layer_count():
    with pytest.raises(ValueError, match='num_layers must be an int >= 0, '
                       'got -1'):
        CompressConvHook(num_layers=-1).apply(build_model('fcn'))


def test_radius_for_a_layer_that_is_not_fine_tuned():
    hook = CompressConvHook(method='gradient_filter', num_layers=5,
                            radius={'backbone.stem.0': 2})
    with pytest.raises(ValueError, match='not fine-tuned'):
        hook.apply(build_model('pspnet'))


def test_preset_without_that_layer_count():
    hook = CompressConvHook(num_layers=3, preset='pspnet')
    with pytest.raises(ValueError, match=r'reference lists for \[5, 10\]'):
        hook.apply(build_model('pspnet'))
    with pytest.warns(UserWarning, match=r"protocol's 'pspnet', whose "
                      r'reference lists have \[5, 10\] layers, not 3: .* '
                      r"extra trainable modules \(\{5: \['decode_head'"):
        traced = CompressConvHook(num_layers=3).apply(build_model('pspnet'))
    assert traced['preset'] is None and len(traced['compressed']) == 3
    model = build_model('pspnet')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        CompressConvHook(num_layers=3, preset=None).apply(model)
    assert not [w for w in caught if 'reference lists' in str(w.message)]


@pytest.mark.parametrize('method', ['hosvd', 'svd'])
def test_aspp_branches_share_one_decomposition(method):
    model = build_model('deeplabv3')
    plan = CompressConvHook(method=method, num_layers=5).apply(model)
    branches = [f'decode_head.aspp_modules.{i}.conv' for i in range(4)]
    assert plan['shared_inputs'] == [branches]
    caches = {id(model.get_submodule(n).shared_input) for n in branches}
    assert len(caches) == 1
    assert model.get_submodule('decode_head.bottleneck.conv').shared_input \
        is None
    model.train()
    model._forward(torch.randn(2, 3, 64, 64))
    stored = [model.get_submodule(n).last_stored for n in branches]
    assert stored[0].numel > 0
    assert all(s.numel == 0 and s.shared for s in stored[1:])


@pytest.mark.parametrize('lean_eps,norm,classifier', [
    (None, 0.8, 0.8), (0.95, 0.95, 0.95),
    (dict(norm=0.7, classifier=0.99), 0.7, 0.99), (dict(norm=0.7), 0.7, 0.8)
])
def test_lean_eps_per_part(lean_eps, norm, classifier):
    from mmseg_hosvd.reductions.lean_modules import LeanFrozenBatchNorm2d
    model = build_model('pspnet')
    plan = CompressConvHook(num_layers=5, eps=0.8, lean=True,
                            lean_eps=lean_eps).apply(model)
    assert plan['lean_eps'] == dict(norm=norm, classifier=classifier)
    bns = [model.get_submodule(n) for n in plan['lean_modules']]
    bns = [m for m in bns if isinstance(m, LeanFrozenBatchNorm2d)]
    assert bns and {m.compress_eps for m in bns} == {norm}
    assert model.get_submodule('decode_head.conv_seg').eps == classifier


def test_lean_classifier_can_keep_its_whole_input():
    """``classifier=None``: a plain convolution, with vanilla's gradient."""
    model = build_model('pspnet')
    plain = build_model('pspnet')
    plain.load_state_dict(model.state_dict())
    plan = CompressConvHook(num_layers=5, eps=0.8, lean=True,
                            lean_eps=dict(norm=0.8,
                                          classifier=None)).apply(model)
    CompressConvHook(method='vanilla', num_layers=5).apply(plain)
    assert plan['lean_eps'] == dict(norm=0.8, classifier=None)
    assert 'decode_head.conv_seg' not in plan['lean_modules']
    assert plan['lean_modules']  # the rest of the region is still lean
    classifiers = [m.get_submodule('decode_head.conv_seg')
                   for m in (model, plain)]
    assert type(classifiers[0]) is nn.Conv2d
    assert classifiers[0].weight.requires_grad
    x = torch.randn(2, 3, 64, 64)
    for m in (model, plain):
        m.train()
        set_norm_eval_(m)
        logits = m._forward(x)
        (logits * torch.linspace(-1, 1, logits.numel()).view_as(logits)
         ).sum().backward()
    torch.testing.assert_close(classifiers[0].weight.grad,
                               classifiers[1].weight.grad)
    torch.testing.assert_close(classifiers[0].bias.grad,
                               classifiers[1].bias.grad)


def test_sharing_can_be_turned_off():
    model = build_model('deeplabv3')
    plan = CompressConvHook(num_layers=5, share_inputs=False).apply(model)
    assert plan['shared_inputs'] == []


@pytest.mark.parametrize('model_name', MODEL_NAMES)
def test_lean_region_replaces_activations_after_the_first_layer(model_name):
    from mmseg_hosvd.reductions.lean_modules import (
        BitMaskReLU,
        LeanFrozenBatchNorm2d,
    )
    from mmseg_hosvd.utils import SavedTensorMeter
    model = build_model(model_name)
    plain = build_model(model_name)
    plain.load_state_dict(model.state_dict())
    plan = CompressConvHook(method='hosvd', num_layers=5, eps=0.8,
                            lean=True).apply(model)
    CompressConvHook(method='vanilla', num_layers=5).apply(plain)
    kinds = {type(model.get_submodule(n)) for n in plan['lean_modules']}
    assert kinds <= {BitMaskReLU, LeanFrozenBatchNorm2d, Conv2dHOSVD}
    assert 'decode_head.conv_seg' in plan['lean_modules']
    # the backbone before the fine-tuned layers keeps its own modules
    assert not any(n.startswith('backbone.stem') or 'layer1' in n
                   for n in plan['lean_modules'])
    assert list(model.state_dict()) == list(plain.state_dict())
    x = torch.randn(2, 3, 64, 64)
    for m in (model, plain):
        m.train()
        set_norm_eval_(m)
    with SavedTensorMeter.for_model(plain) as vanilla_meter:
        expected = plain._forward(x)
    with SavedTensorMeter.for_model(model) as lean_meter:
        got = model._forward(x)
    torch.testing.assert_close(got, expected)
    assert lean_meter.bytes < vanilla_meter.bytes


def test_options_from_a_config_reach_the_checkpoint_as_plain_python(
        tmp_path):
    """A radius dict from a config is a ConfigDict; the checkpoint's meta
    must hold a plain dict, or loading it is refused as untrusted."""
    cfg = Config.fromfile(
        config_path('swin-upernet', 'finetune', 'gradfilter', 10,
                    root=CONFIGS))
    options = dict(cfg.custom_hooks[0])
    options.pop('type')
    assert isinstance(options['radius'], ConfigDict)
    plan = CompressConvHook(**options).apply(build_model('swin-upernet'))
    path = str(tmp_path / 'meta.pth')
    torch.save({'meta': {'finetune': plan.to_meta()}}, path)
    meta = load_local_checkpoint(path)['meta']['finetune']
    assert type(meta['radius']) is dict
    assert meta['radius'] == dict(cfg.custom_hooks[0].radius)
