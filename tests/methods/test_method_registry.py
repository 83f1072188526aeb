"""A method is one definition: a toy method registered here, and nowhere
else, is accepted by the hook and compare.py; its protocol row is one entry
of the config table."""
import dataclasses
import json
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner
from torch import nn

from mmseg_hosvd.engine import CompressConvHook
from mmseg_hosvd.methods import (
    FINETUNE_METHODS,
    FinetuneMethod,
    Option,
    get_method,
    method_names,
)
from mmseg_hosvd.methods.lookup import setting_tag
from mmseg_hosvd.models import CompressedConv2d
from mmseg_hosvd.ops import conv2d_weight_grad
from mmseg_hosvd.ops.compressed_conv_function import (
    BackwardRule,
    compressed_conv2d,
)
from mmseg_hosvd.protocol import config_table
from mmseg_hosvd.protocol.comparison import collect
from mmseg_hosvd.protocol.config_table import TABLE, Setting, protocol_tags
from mmseg_hosvd.protocol.config_writer import render_all
from mmseg_hosvd.protocol.matrix import config_path
from mmseg_hosvd.protocol.pareto_plot import marker
from mmseg_hosvd.protocol.reporting import checkpoint_record

from ..helpers import build_model, tiny_runner_config

TOY = 'toy_exact'


class KeepAllRule(BackwardRule):
    """Stores the input itself; the exact weight gradient from it."""

    def weight_grad(self, stored, grad, weight_shape, geo, input_shape):
        return conv2d_weight_grad(stored[0], weight_shape, grad, geo)

    def ranks(self, stored):
        return None


class ToyConv2d(CompressedConv2d):
    """Stores its whole input, but counts it as ``keep`` of it."""

    def __init__(self, *args, keep: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.keep = keep

    def compressed_forward(self, x, geo):
        out, stored = compressed_conv2d(x, self.weight, self.bias, geo,
                                        KeepAllRule(), [x.detach()])
        return out, stored._replace(numel=int(stored.numel * self.keep))


def check_keep(keep):
    if not 0 < keep <= 1:
        raise ValueError(f'keep must be in (0, 1], got {keep!r}')
    return keep


class ToyMethod(FinetuneMethod):
    # no name: the registry key names it
    tag_format = 'toy-keep{keep:g}'
    module = ToyConv2d
    options = dict(keep=Option(1.0, check_keep))
    marker = '*'
    order = 6

    def label(self, meta):
        return f"keep={meta['keep']}"


@pytest.fixture
def toy():
    FINETUNE_METHODS.register_module(name=TOY, module=ToyMethod)
    yield TOY
    FINETUNE_METHODS.module_dict.pop(TOY)


def test_the_hook_applies_it_and_checks_its_options(toy):
    model = build_model('deeplabv3')
    reference = build_model('deeplabv3')
    reference.load_state_dict(model.state_dict())
    plan = CompressConvHook(method=toy, num_layers=5, keep=0.5).apply(model)
    CompressConvHook(method='vanilla', num_layers=5).apply(reference)
    assert plan['keep'] == 0.5 and plan['method'] == toy
    for name in plan['compressed']:
        assert isinstance(model.get_submodule(name), ToyConv2d)
    for net in (model, reference):
        net.train()
        torch.manual_seed(1)
        net._forward(torch.randn(2, 3, 64, 64)).square().sum().backward()
    for name in plan['compressed']:
        torch.testing.assert_close(
            model.get_submodule(name).weight.grad,
            reference.get_submodule(name).weight.grad)
    with pytest.raises(ValueError, match=r'keep must be in \(0, 1\], got 2'):
        CompressConvHook(method=toy, num_layers=5, keep=2)
    with pytest.raises(ValueError, match="keep needs method='toy_exact', "
                       "got method='hosvd'"):
        CompressConvHook(method='hosvd', num_layers=5, keep=0.5)


def test_one_table_entry_puts_it_in_the_protocol_and_the_tools(
        toy, monkeypatch):
    from tools import run_protocol
    assert toy in method_names()
    assert setting_tag(toy, dict(keep=0.5), lean=True) == 'toy-keep0.5-lean'
    assert 'toy-keep0.5' not in protocol_tags()
    setting = Setting('toy-keep0.5', toy, dict(keep=0.5))
    assert setting_tag(setting.method, setting.options) == setting.tag
    table = dataclasses.replace(TABLE,
                                settings=TABLE.settings + (setting, ))
    before = render_all()
    added = {p: text for p, text in render_all(table).items()
             if p not in before}
    assert len(added) == 2 * len(TABLE.models)
    fcn = added[osp.join('fcn', 'fcn_r18-d8_toy-keep0.5-l5_shapes-target-'
                         '128x128.py')]
    assert ("dict(type='CompressConvHook', method='toy_exact', keep=0.5, "
            'num_layers=5)') in fcn
    monkeypatch.setattr(config_table, 'TABLE', table)
    assert protocol_tags(extensions=False)[-1] == 'toy-keep0.5'
    path = config_path('fcn', 'finetune', 'toy-keep0.5', 5, root='configs')
    assert path == osp.join('configs', 'fcn',
                            'fcn_r18-d8_toy-keep0.5-l5_shapes-target-'
                            '128x128.py')
    args = run_protocol.parse_args(['--methods', 'toy-keep0.5'])
    assert args.methods == ['toy-keep0.5']
    assert 'toy-keep0.5' in run_protocol.parse_args([]).methods


def test_compare_reads_a_real_run_of_it(toy, tiny_data, tmp_path):
    from tools import compare
    rows = []
    for method, options in (('vanilla', {}), (toy, dict(keep=0.5))):
        work = tmp_path / method
        cfg = tiny_runner_config(
            'fcn', str(work), tiny_data,
            [dict(type='CompressConvHook', method=method, num_layers=5,
                  **options),
             dict(type='ActivationMemoryHook')])
        runner = Runner.from_cfg(cfg)
        runner.train()
        metrics = runner.test()
        record = checkpoint_record(f'configs/fcn/fcn_r18-d8_{method}.py',
                                   str(work / 'iter_2.pth'), metrics)
        with open(work / 'test_results.json', 'w') as f:
            json.dump(record, f)
        rows.append(str(work))
    table, skipped = collect(rows)
    assert not skipped
    toy_row = next(r for r in table if r['method'] == toy)
    assert toy_row['setting'] == 'keep=0.5'
    # it stores its whole input but counts half of it (FCN's fine-tuned
    # convolutions read distinct tensors)
    assert toy_row['analytical_ratio'] == pytest.approx(0.5, rel=1e-6)
    assert [r['method'] for r in table] == ['vanilla', toy]
    assert marker(toy) == '*' and marker(toy + '-lean') == 'X'
    plot = tmp_path / 'pareto.png'
    assert compare.main(rows + ['--plot', str(plot)]) == 0
    assert osp.getsize(plot) > 0


def test_unknown_methods_and_options_are_named():
    with pytest.raises(ValueError, match="unknown method 'hosvdd'; choose "
                       "one of .*'hosvd'"):
        get_method('hosvdd')
    with pytest.raises(ValueError, match="unknown option 'epsilon' for "
                       "method 'hosvd'; it takes \\['allocate', 'eps', "
                       "'keep_batch', 'solver', 'spatial_eps', "
                       "'warm_start'\\]"):
        CompressConvHook(method='hosvd', num_layers=5, epsilon=0.8)
    with pytest.raises(ValueError, match=r"eps=0.8 applies to the methods "
                       r"\('svd', 'hosvd', 'hosvd_subspace'\) and to the "
                       r"lean region, got method='vanilla' without lean"):
        CompressConvHook(method='vanilla', num_layers=5, eps=0.8)
    CompressConvHook(method='vanilla', num_layers=5, eps=0.8, lean=True)


def test_a_name_that_contradicts_the_registry_is_refused():
    class Misnamed(ToyMethod):
        name = 'other'

    FINETUNE_METHODS.register_module(name='misnamed', module=Misnamed)
    try:
        with pytest.raises(ValueError, match="registered as 'misnamed' but "
                           "its name is 'other'"):
            get_method('misnamed')
    finally:
        FINETUNE_METHODS.module_dict.pop('misnamed')


def test_builtin_methods_have_distinct_tags_markers_and_order():
    tags = protocol_tags()
    assert len(set(tags)) == len(tags)
    builtins = [get_method(m) for m in ('vanilla', 'gradient_filter', 'svd',
                                        'hosvd', 'hosvd_subspace',
                                        'quantized')]
    assert len({m.marker for m in builtins}) == len(builtins)
    assert [m.order for m in builtins] == sorted(m.order for m in builtins)
    assert all(m.module is None or issubclass(m.module, nn.Conv2d)
               for m in builtins)
    assert all(m.linear_module is None or issubclass(m.linear_module,
                                                     nn.Linear)
               for m in builtins)


def test_every_compressing_method_but_gradient_filter_has_a_linear_module():
    methods = {m.name: m for m in
               (get_method(n) for n in ('vanilla', 'gradient_filter', 'svd',
                                        'hosvd', 'hosvd_subspace',
                                        'quantized'))}
    assert {n for n, m in methods.items() if m.linear_module is None} == {
        'vanilla', 'gradient_filter'}
    assert methods['vanilla'].module_for('fc', nn.Linear(2, 2)) is None
    with pytest.raises(ValueError, match="layer 'fc' is an nn.Linear, and "
                       "method 'gradient_filter' compresses only"):
        methods['gradient_filter'].module_for('fc', nn.Linear(2, 2))
