"""The planner's set-ups as configs: what each changes, and what it keeps."""
import pytest
from mmengine.config import Config

from mmseg_hosvd.engine import CompressConvHook
from mmseg_hosvd.planning.probe_runs import HEADER, config_text
from mmseg_hosvd.planning.setups import (
    SETUPS,
    finetuned_layer_count,
    get_setup,
    inapplicable,
    setup_names,
    setup_overrides,
)
from mmseg_hosvd.protocol.matrix import config_path

from ..helpers import CONFIGS, model_config

CONFIG = model_config('deeplabv3').filename


def written(tmp_path, setup, probe=False):
    path = tmp_path / f'{setup.name}.py'
    path.write_text(config_text(CONFIG, setup_overrides(
        Config.fromfile(CONFIG), setup, probe), 'a note'))
    return Config.fromfile(str(path)), path.read_text()


def types(cfg):
    return [h['type'] for h in cfg.custom_hooks]


@pytest.mark.parametrize('setup', SETUPS, ids=setup_names())
def test_each_set_up_is_a_config_of_the_same_layers(tmp_path, setup):
    cfg, text = written(tmp_path, setup)
    assert text.startswith(HEADER + '\n# a note\n_base_ = ')
    base = Config.fromfile(CONFIG)
    hook = dict(cfg.custom_hooks[0])
    assert hook.pop('type') == 'CompressConvHook'
    assert hook['method'] == setup.method and hook['num_layers'] == 5
    CompressConvHook(**hook)  # its options are accepted
    assert 'ActivationMemoryHook' in types(cfg)
    assert (('FrozenPrefixHook' in types(cfg)) == ('ChunkedLossHook' in
                                                   types(cfg)) ==
            setup.reductions)
    assert ('ActivationCheckpointHook' in types(cfg)) == setup.checkpointing
    assert cfg.load_from == base.load_from
    assert cfg.train_cfg.max_iters == base.train_cfg.max_iters
    assert (cfg.optim_wrapper.type == 'AutocastOptimWrapper') == (
        setup.autocast)
    assert cfg.optim_wrapper.optimizer == base.optim_wrapper.optimizer
    if setup.micro_batch is None:
        assert cfg.train_dataloader.batch_size == 8
    else:
        assert cfg.train_dataloader.batch_size == setup.micro_batch
        assert cfg.optim_wrapper.accumulative_counts == 8 // (
            setup.micro_batch)
        assert cfg.train_cfg.whole_steps is True


def test_a_mixed_precision_probe_measures_autocast(tmp_path):
    cfg, _ = written(tmp_path, get_setup('vanilla-exact-amp'), probe=True)
    assert types(cfg)[-1] == 'AutocastErrorHook'
    assert 'allocate' not in cfg.custom_hooks[0]
    cfg, _ = written(tmp_path, get_setup('hosvd-eps0.8-lean-amp'),
                     probe=True)
    assert types(cfg)[-1] == 'AutocastErrorHook'
    assert cfg.custom_hooks[0]['allocate'] == dict(grid=[0.8], budget_mb=1e6)
    cfg, _ = written(tmp_path, get_setup('vanilla-exact-amp'))
    assert 'AutocastErrorHook' not in types(cfg)


def test_a_probe_measures_the_one_value_of_a_compressed_set_up(tmp_path):
    cfg, _ = written(tmp_path, get_setup('qact2'), probe=True)
    assert cfg.custom_hooks[0]['allocate'] == dict(grid=[2], budget_mb=1e6)
    cfg, _ = written(tmp_path, get_setup('hosvd-eps-alloc0.8'), probe=True)
    assert cfg.custom_hooks[0]['allocate'] == dict(
        budget_of=0.8, criterion='whole', spatial_grid=[0.6, 0.7, 0.8, 0.9,
                                                        0.95])
    cfg, _ = written(tmp_path, get_setup('vanilla-exact'), probe=True)
    assert 'allocate' not in cfg.custom_hooks[0]


def test_configs_the_planner_cannot_use_are_named():
    cfg = Config.fromfile(CONFIG)
    cfg.custom_hooks = [dict(type='ActivationMemoryHook')]
    with pytest.raises(ValueError, match=r"one CompressConvHook .* its "
                       r"custom_hooks are \['ActivationMemoryHook'\]"):
        setup_overrides(cfg, get_setup('vanilla'))
    with pytest.raises(ValueError, match="unknown set-up 'mb3'; choose "
                       r"from \['vanilla', "):
        get_setup('mb3')


@pytest.mark.parametrize('setup,row', [
    ('vanilla-exact', 'vanilla'),
    ('vanilla-exact-ckpt', 'vanilla-ckpt'),
    ('vanilla-exact-mb4', 'vanilla-mb4'),
    ('vanilla-exact-mb2', 'vanilla-mb2'),
    ('vanilla-exact-mb1', 'vanilla-mb1'),
    ('hosvd-eps0.8-lean-mb1', 'hosvd-eps0.8-lean-mb1'),
    ('hosvd-eps-alloc0.8', 'hosvd-eps-alloc0.8-whole-keepbatch-spatial'),
    ('vanilla-exact-amp', 'vanilla-amp'),
    ('hosvd-eps0.8-lean-amp', 'hosvd-eps0.8-lean-amp'),
])
def test_set_ups_are_the_protocol_rows(tmp_path, setup, row):
    """Each exact, accumulation and mixed-precision set-up, and the
    allocation, trains what the protocol's row of that name trains (the
    exact reductions on, as on every row)."""
    cfg, _ = written(tmp_path, get_setup(setup))
    row = Config.fromfile(config_path('deeplabv3', 'finetune', row, 5,
                                      root=CONFIGS))
    assert [dict(h) for h in cfg.custom_hooks] == [
        dict(h) for h in row.custom_hooks]
    for key in ('train_dataloader', 'optim_wrapper', 'train_cfg'):
        assert cfg[key] == row[key], key


@pytest.mark.parametrize('name,batch,applies', [
    ('vanilla-exact-mb4', 8, True), ('vanilla-exact-mb4', 4, False),
    ('vanilla-exact-mb4', 6, False), ('vanilla-exact-mb2', 6, True),
    ('vanilla-exact-mb2', 2, False), ('vanilla-exact-mb1', 2, True),
    ('vanilla-exact-mb1', 1, False), ('hosvd-eps0.8-lean-mb1', 1, False),
    ('vanilla-exact', 1, True), ('hosvd-eps0.8', 1, True),
])
def test_accumulation_needs_a_batch_its_micro_batches_divide(
        name, batch, applies):
    reason = inapplicable(get_setup(name), batch)
    assert (reason is None) == applies
    if not applies:
        assert reason.startswith(f"set-up '{name}' accumulates micro-")
        assert reason.endswith(f'the config has {batch}')


def test_an_accumulation_set_up_the_batch_cannot_take_is_refused():
    cfg = Config.fromfile(CONFIG)
    cfg.train_dataloader.batch_size = 6
    with pytest.raises(ValueError, match="'vanilla-exact-mb4' accumulates "
                       'micro-batches of 4 image.*the config has 6'):
        setup_overrides(cfg, get_setup('vanilla-exact-mb4'))


@pytest.mark.parametrize('setup,want', [
    ('vanilla-exact-amp', dict(type='AutocastOptimWrapper',
                               dtype='bfloat16')),
    ('hosvd-eps0.8-lean-amp', dict(type='AutocastOptimWrapper',
                                   dtype='bfloat16')),
    ('vanilla-exact', dict(type='OptimWrapper')),
    ('hosvd-eps0.8', dict(type='OptimWrapper')),
    ('vanilla-exact-mb2', dict(type='OptimWrapper', accumulative_counts=4)),
])
def test_a_float16_wrapper_becomes_the_set_up_s_precision(tmp_path, setup,
                                                          want):
    """A config trained with MMEngine's AmpOptimWrapper (loss scaling):
    the autocast set-ups get bfloat16 autocast, the others float32, each
    with the config's optimizer and without the options only
    AmpOptimWrapper takes."""
    base = Config.fromfile(CONFIG)
    path = tmp_path / 'fp16.py'
    path.write_text(f'_base_ = {CONFIG!r}\noptim_wrapper = dict(type='
                    "'AmpOptimWrapper', loss_scale='dynamic', "
                    "dtype='float16')\n")
    user = Config.fromfile(str(path))
    out = tmp_path / 'setup.py'
    out.write_text(config_text(str(path), setup_overrides(
        user, get_setup(setup))))
    wrapper = Config.fromfile(str(out)).optim_wrapper
    assert wrapper == dict(base.optim_wrapper, **want)


@pytest.mark.parametrize('hook,count', [
    (dict(num_layers=5), 5), (dict(num_layers=0), 0),
    (dict(layers='decode_head.conv_seg'), 1),
    (dict(layers=['a.conv', 'b.conv', 'c.conv']), 3),
    (dict(layers=('a.conv', 'b.conv')), 2), (dict(), None),
    (dict(num_layers='5'), None), (dict(num_layers=5.0), None),
    (dict(num_layers=True), None),
    (dict(num_layers=0, trainable=['backbone.layer4']), None),
    (dict(num_layers=5, trainable=()), 5)])
def test_the_fine_tuned_layer_count_of_a_hook(hook, count):
    assert finetuned_layer_count(dict(type='CompressConvHook', **hook)) == (
        count)
