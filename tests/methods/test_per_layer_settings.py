"""A setting per layer (hosvd's eps and spatial eps, quantized's bits):
options, tags, the modules built, and the caches of a shared-input
group."""
import pytest
import torch

from mmseg_hosvd.engine import CompressConvHook
from mmseg_hosvd.methods import get_method
from mmseg_hosvd.methods.lookup import setting_tag
from mmseg_hosvd.models import Conv2dHOSVD, Conv2dQuantized

from ..helpers import build_model

ASPP = [f'decode_head.aspp_modules.{i}.conv' for i in range(4)]
HEAD = ['decode_head.bottleneck.conv'] + ASPP


def per_layer(value, **changes):
    return {**{name: value for name in HEAD}, **changes}


@pytest.mark.parametrize('method,options,tag', [
    ('hosvd', dict(eps=0.8), 'hosvd-eps0.8'),
    ('hosvd', dict(eps={'a': 0.8}), 'hosvd-eps-per-layer'),
    ('hosvd', dict(allocate=dict(budget_of=0.8)), 'hosvd-eps-alloc0.8'),
    ('hosvd', dict(allocate=dict(budget_mb=1.5)), 'hosvd-eps-alloc1.5MB'),
    ('hosvd', dict(allocate=dict(budget_of=0.8, criterion='whole')),
     'hosvd-eps-alloc0.8-whole'),
    ('quantized', dict(allocate=dict(budget_mb=2, criterion='whole')),
     'qact-alloc2MB-whole'),
    ('hosvd', dict(allocate=dict(budget_of=0.8), warm_start=False),
     'hosvd-eps-alloc0.8-cold'),
    ('hosvd', dict(spatial_eps=0.9), 'hosvd-eps0.8-spatial0.9'),
    ('hosvd', dict(eps=0.7, spatial_eps=0.7), 'hosvd-eps0.7'),
    ('hosvd', dict(spatial_eps={'a': 0.9}, keep_batch=True),
     'hosvd-eps0.8-keepbatch-spatial-per-layer'),
    ('hosvd', dict(keep_batch=True, allocate=dict(
        budget_of=0.8, criterion='whole', spatial_grid=[0.8, 0.9])),
     'hosvd-eps-alloc0.8-whole-keepbatch-spatial'),
    ('hosvd_subspace', dict(eps={'a': 0.8}), 'hosvd-subspace-per-layer'),
    ('hosvd_subspace', dict(allocate=dict(budget_of=0.8)),
     'hosvd-subspace-alloc0.8'),
    ('quantized', dict(bits=2), 'qact2'),
    ('quantized', dict(bits={'a': 2}), 'qact-per-layer'),
    ('quantized', dict(allocate=dict(budget_of=4)), 'qact-alloc4'),
])
def test_tags_say_per_layer_and_allocated_settings(method, options, tag):
    assert setting_tag(method, options) == tag


@pytest.mark.parametrize('method,allocate,label', [
    ('hosvd', dict(budget_of=0.8), 'eps by gradient error in the bytes of '
     'eps 0.8'),
    ('hosvd', dict(budget_of=0.8, grid=[0.6, 0.8, 0.9]),
     'eps by gradient error in the bytes of eps 0.8, grid 0.6/0.8/0.9'),
    ('hosvd', dict(budget_mb=2, criterion='whole', batches=2),
     'eps by whole-gradient error in 2 MB, 2 batches'),
    ('hosvd', dict(budget_of=0.8, criterion='whole', spatial_grid=[0.9]),
     'eps and spatial_eps by whole-gradient error in the bytes of eps 0.8, '
     'spatial_grid 0.8/0.9'),
    ('quantized', dict(budget_of=4, grid=[2, 4, 8]),
     'bits by gradient error in the bytes of bits 4'),
    ('quantized', dict(budget_of=4, grid=[2, 4]),
     'bits by gradient error in the bytes of bits 4, grid 2/4'),
])
def test_labels_name_the_grid_and_batches_when_not_the_default(
        method, allocate, label):
    """Allocations from other candidates are other rows in comparisons."""
    found = get_method(method)
    meta = dict(allocate=found.options['allocate'].check(allocate))
    assert found.allocation_label(meta) == label


def test_the_budget_setting_joins_the_grid():
    allocation = get_method('hosvd').check_options(
        dict(allocate=dict(budget_of=0.85, grid=[0.9, 0.5])))['allocate']
    assert allocation == dict(grid=[0.5, 0.85, 0.9], budget_of=0.85,
                              budget_mb=None, batches=1, criterion='layers',
                              spatial_grid=None)
    paired = get_method('hosvd').check_options(dict(allocate=dict(
        budget_of=0.85, grid=[0.9], spatial_grid=[0.95, 0.6])))['allocate']
    assert paired['spatial_grid'] == [0.6, 0.85, 0.95]
    assert get_method('quantized').check_options(dict(
        allocate=dict(budget_mb=2)))['allocate']['grid'] == [2, 4, 8]


@pytest.mark.parametrize('options,match', [
    (dict(eps={'decode_head.bottleneck.conv': 1.5}),
     r"'decode_head.bottleneck.conv': eps must be in \(0, 1\], got 1.5"),
    (dict(eps={}), 'must name at least one layer, got an empty dict'),
    (dict(allocate=dict(grid=[0.8])),
     'needs exactly one of budget_of .* and budget_mb'),
    (dict(allocate=dict(budget_of=0.8, budget_mb=1)),
     'needs exactly one of budget_of'),
    (dict(allocate=dict(budget_of=0.8, budget=1)),
     r"allocate has unknown keys \['budget'\]"),
    (dict(allocate=dict(budget_of=0.8, grid=[])),
     r'allocate.grid must be a non-empty list of settings, got \[\]'),
    (dict(allocate=dict(budget_of=0.8, grid=[0.8, 0])),
     r'eps must be in \(0, 1\], got 0'),
    (dict(allocate=dict(budget_mb=-1)),
     'budget_mb must be a number > 0, got -1'),
    (dict(allocate=dict(budget_of=0.8, batches=0)),
     'allocate.batches must be an int >= 1, got 0'),
    (dict(allocate=0.8), 'allocate must be None or a dict'),
    (dict(allocate=dict(budget_of=0.8, criterion='sum')),
     r"allocate.criterion must be one of \('layers', 'whole'\), got 'sum'"),
    (dict(spatial_eps=1.5), r'spatial_eps must be in \(0, 1\], got 1.5'),
    (dict(spatial_eps={'decode_head.bottleneck.conv': 0}),
     r"'decode_head.bottleneck.conv': spatial_eps must be in \(0, 1\], "
     'got 0'),
    (dict(allocate=dict(budget_of=0.8, spatial_grid=0.9)),
     'allocate.spatial_grid must be a non-empty list of settings, got 0.9'),
    (dict(allocate=dict(budget_of=0.8, spatial_grid=[2])),
     r'spatial_eps must be in \(0, 1\], got 2'),
    (dict(spatial_eps=0.9, allocate=dict(budget_of=0.8,
                                         spatial_grid=[0.9])),
     r'spatial_eps=0.9 is given and allocated \(allocate.spatial_grid\)'),
    (dict(spatial_eps={'decode_head.bottleneck.conv': None}),
     r"'decode_head.bottleneck.conv': spatial_eps must be a number in "
     r'\(0, 1\], got None'),
    (dict(allocate=dict(budget_mb=1, spatial_grid=[None])),
     r'spatial_eps must be a number in \(0, 1\], got None'),
    (dict(spatial_eps={'decode_head.bottleneck.conv': 0.9},
          allocate=dict(budget_of=0.8)),
     'spatial_eps is given per layer, and allocate measures one setting on '
     'every layer'),
])
def test_bad_per_layer_and_allocation_options_are_named(options, match):
    with pytest.raises(ValueError, match=match):
        CompressConvHook(method='hosvd', num_layers=5, **options)


def test_only_hosvd_allocates_a_spatial_eps():
    with pytest.raises(ValueError, match=r"allocate has unknown keys "
                       r"\['spatial_grid'\]"):
        CompressConvHook(method='quantized', num_layers=5, allocate=dict(
            budget_of=4, spatial_grid=[0.9]))


def test_quantized_bits_per_layer_are_checked():
    with pytest.raises(ValueError, match=r"'decode_head.bottleneck.conv': "
                       r'bits must be one of \(2, 4, 8\), got 3'):
        CompressConvHook(method='quantized', num_layers=5,
                         bits={'decode_head.bottleneck.conv': 3})


def test_per_layer_eps_must_name_exactly_the_fine_tuned_layers():
    model = build_model('deeplabv3')
    missing = per_layer(0.8)
    del missing['decode_head.bottleneck.conv']
    with pytest.raises(ValueError, match=r"eps has no value for the "
                       r"fine-tuned layers \['decode_head.bottleneck.conv'"):
        CompressConvHook(method='hosvd', num_layers=5,
                         eps=missing).apply(model)
    extra = per_layer(0.8, **{'backbone.conv1': 0.9})
    with pytest.raises(ValueError, match=r"eps given for layers that are "
                       r"not fine-tuned: \['backbone.conv1'\]"):
        CompressConvHook(method='hosvd', num_layers=5,
                         eps=extra).apply(model)


def test_per_layer_spatial_eps_must_name_exactly_the_fine_tuned_layers():
    model = build_model('deeplabv3')
    with pytest.raises(ValueError, match=r"spatial_eps has no value for "
                       r"the fine-tuned layers \['decode_head.aspp"):
        CompressConvHook(method='hosvd', num_layers=5, spatial_eps={
            'decode_head.bottleneck.conv': 0.9}).apply(model)
    with pytest.raises(ValueError, match=r"spatial_eps given for layers "
                       r"that are not fine-tuned: \['backbone.conv1'\]"):
        CompressConvHook(method='hosvd', num_layers=5, spatial_eps=per_layer(
            0.9, **{'backbone.conv1': 0.9})).apply(model)


def test_lean_with_per_layer_eps_needs_its_own_thresholds():
    with pytest.raises(ValueError, match='eps is given per layer, so the '
                       'lean region has no single default'):
        CompressConvHook(method='hosvd', num_layers=5, lean=True,
                         eps=per_layer(0.8))
    hook = CompressConvHook(method='hosvd', num_layers=5, lean=True,
                            eps=per_layer(0.8), lean_eps=0.7)
    assert hook.lean_eps == dict(norm=0.7, classifier=0.7)


def converted(model, **options):
    CompressConvHook(num_layers=5, **options).apply(model)
    return {name: model.get_submodule(name) for name in HEAD}


def test_each_layer_gets_its_value_and_a_group_shares_one_cache():
    eps = per_layer(0.8, **{'decode_head.bottleneck.conv': 0.5})
    layers = converted(build_model('deeplabv3'), method='hosvd', eps=eps)
    for name, layer in layers.items():
        assert isinstance(layer, Conv2dHOSVD)
        assert layer.eps == eps[name] == layer.decomposition.eps
    assert len({id(layers[name].shared_input) for name in ASPP}) == 1


def test_each_layer_gets_its_spatial_eps_and_a_group_splits_by_it():
    spatial = per_layer(0.9, **{ASPP[2]: 0.95, ASPP[3]: 0.95})
    layers = converted(build_model('deeplabv3'), method='hosvd', eps=0.7,
                       spatial_eps=spatial)
    for name, layer in layers.items():
        assert layer.decomposition.spatial_eps == spatial[name]
        assert layer.decomposition.eps == 0.7
    caches = [layers[name].shared_input for name in ASPP]
    assert caches[0] is caches[1] and caches[2] is caches[3]
    assert caches[0] is not caches[2]
    assert 'spatial_eps=0.95' in repr(layers[ASPP[2]])


def test_a_group_split_by_its_values_decomposes_once_per_value():
    eps = per_layer(0.8, **{ASPP[0]: 0.6, ASPP[1]: 0.6})
    layers = converted(build_model('deeplabv3'), method='hosvd', eps=eps)
    caches = [layers[name].shared_input for name in ASPP]
    assert caches[0] is caches[1] and caches[2] is caches[3]
    assert caches[0] is not caches[2]
    bits = per_layer(8, **{ASPP[3]: 2})
    layers = converted(build_model('deeplabv3'), method='quantized',
                       bits=bits)
    assert [layers[n].bits for n in ASPP] == [8, 8, 8, 2]
    assert all(isinstance(m, Conv2dQuantized) for m in layers.values())
    assert layers[ASPP[3]].shared_input is not layers[ASPP[0]].shared_input


def weight_grads(model, names):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    model.train()
    model._forward(x).square().sum().backward()
    return {n: model.get_submodule(n).weight.grad.clone() for n in names}


def test_the_same_value_per_layer_trains_as_one_value():
    torch.manual_seed(1)
    model = build_model('deeplabv3')
    state = {k: v.clone() for k, v in model.state_dict().items()}
    converted(model, method='hosvd', eps=0.7)
    one = weight_grads(model, HEAD)
    again = build_model('deeplabv3')
    again.load_state_dict(state)
    converted(again, method='hosvd', eps=per_layer(0.7))
    each = weight_grads(again, HEAD)
    for name in HEAD:
        torch.testing.assert_close(each[name], one[name], rtol=0, atol=0)


def test_per_layer_eps_one_is_exact():
    torch.manual_seed(2)
    model = build_model('deeplabv3')
    state = {k: v.clone() for k, v in model.state_dict().items()}
    CompressConvHook(method='vanilla', num_layers=5).apply(model)
    exact = weight_grads(model, HEAD)
    compressed = build_model('deeplabv3')
    compressed.load_state_dict(state)
    converted(compressed, method='hosvd', eps=per_layer(1.0),
              solver='eigh')
    got = weight_grads(compressed, HEAD)
    for name in HEAD:
        torch.testing.assert_close(got[name], exact[name], rtol=1e-4,
                                   atol=1e-5)
