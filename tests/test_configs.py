"""Every config loads, and the protocol's checkpoints chain up."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from mmseg_hosvd.engine.config_checks import check_data_roots
from mmseg_hosvd.methods.lookup import setting_tag
from mmseg_hosvd.models import PRESETS
from mmseg_hosvd.protocol.config_table import protocol_tags
from mmseg_hosvd.protocol.matrix import (
    MODEL_CONFIGS,
    config_path,
    final_checkpoint,
)
from mmseg_hosvd.protocol.peers import PEER_ROWS, peer_tags
from mmseg_hosvd.reductions.describe import reductions_of, reductions_tag

from .helpers import CONFIGS, MODEL_NAMES

#: The exact reductions of every protocol fine-tuning config.
EXACT = 'prefix1-chunkloss1'
TRANSFORMERS = ('MixVisionTransformer', 'SwinTransformer')
ALL = sorted(
    p for p in glob.glob(osp.join(CONFIGS, '**', '*.py'), recursive=True)
    if '_base_' not in p)


@pytest.mark.parametrize('path', ALL, ids=lambda p: osp.basename(p))
def test_config_loads_with_what_the_protocol_needs(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmseg'
    assert 'mmseg_hosvd' in cfg.custom_imports['imports']
    backbone = cfg.model.backbone
    if backbone.type in TRANSFORMERS:
        # tokens are normalized by LayerNorm; no stochastic depth or
        # dropout anywhere, so that methods compare exactly
        assert backbone.norm_cfg['type'] == 'LN'
        assert backbone.drop_rate == backbone.attn_drop_rate == 0
        assert backbone.drop_path_rate == 0
    else:
        assert backbone.norm_cfg['type'] == 'BN'
    assert cfg.model.decode_head.norm_cfg['type'] == 'BN'
    assert cfg.model.decode_head.dropout_ratio == 0
    assert 'auxiliary_head' not in cfg.model
    assert cfg.randomness.seed == 233
    assert cfg.default_hooks.malloc_trim.type == 'MallocTrimHook'
    assert cfg.default_hooks.data_check.type == 'DataCheckHook'
    assert cfg.default_hooks.checkpoint.type == 'SafeCheckpointHook'
    optimizer, clip = cfg.optim_wrapper.optimizer, cfg.optim_wrapper.clip_grad
    cnn_pretraining = ('shapes-source' in path
                       and backbone.type not in TRANSFORMERS)
    if cnn_pretraining:  # from scratch, see schedules/pretrain_cnn_250it.py
        assert optimizer.lr == 0.05 and clip is None
        # batches are the crops, not padded to the fine-tuning size
        crop = next(t for t in cfg.train_dataloader.dataset.pipeline
                    if t.type == 'RandomCrop').crop_size
        assert tuple(cfg.model.data_preprocessor.size) == tuple(crop) == (
            64, 64)
        if backbone.type.startswith('ResNet'):  # live residual branches
            assert backbone.zero_init_residual is False
    else:
        assert (optimizer.lr, optimizer.weight_decay) == (0.01, 5e-4)
        assert clip.max_norm == 1


def test_every_model_times_every_method_and_layer_count():
    expected = {
        config_path(m, 'finetune', t, n, root=CONFIGS)
        for m in MODEL_CONFIGS for t in protocol_tags() + peer_tags()
        for n in (5, 10)
    } | {
        config_path(m, s, root=CONFIGS)
        for m in MODEL_CONFIGS for s in ('pretrain', 'calib')
    }
    protocol = [p for p in ALL if osp.relpath(p, CONFIGS).split(osp.sep)[0]
                != 'paper']
    assert set(protocol) == expected


@pytest.mark.parametrize('model', MODEL_NAMES)
def test_checkpoints_chain_pretrain_calib_finetune(model, monkeypatch):
    monkeypatch.chdir(osp.dirname(CONFIGS))
    pretrain = config_path(model, 'pretrain')
    calib = config_path(model, 'calib')
    assert Config.fromfile(calib).load_from == final_checkpoint(pretrain)
    for tag in protocol_tags():
        for layers in (5, 10):
            cfg = Config.fromfile(config_path(model, 'finetune', tag, layers))
            assert cfg.load_from == final_checkpoint(calib)
            hook = dict(cfg.custom_hooks[0])
            assert hook.pop('type') == 'CompressConvHook'
            if 'layers' in hook:
                # a convolution-only method on a preset naming Linear layers
                # (Swin-T UPerNet, 10): it filters the convolutions and
                # fine-tunes the Linear layers uncompressed, with the radii
                names, plain = hook.pop('layers'), hook.pop('trainable')
                preset = PRESETS[model]
                assert names + plain == preset.compress[layers]
                assert hook.pop('radius') == preset.radius[layers]
            else:
                assert hook.pop('num_layers') == layers
            method, lean = hook.pop('method'), hook.pop('lean', False)
            hook.pop('lean_eps', None)
            # the config's options are what its name says
            assert setting_tag(method, hook, lean) == tag
            if method == 'hosvd_subspace':
                assert hook['budget_mb'] > 0
            assert cfg.default_hooks.step_peak.type == 'StepPeakMemoryHook'
            assert cfg.custom_hooks[1]['type'] == 'ActivationMemoryHook'
            # every row's peak is with the exact reductions a user short of
            # memory turns on
            assert reductions_tag(reductions_of(cfg)) == EXACT


@pytest.mark.parametrize('model', MODEL_NAMES)
def test_peer_rows_are_their_method_config_plus_one_reduction(model):
    for tag, reduction in PEER_ROWS:
        for layers in (5, 10):
            base = Config.fromfile(
                config_path(model, 'finetune', tag, layers, root=CONFIGS))
            cfg = Config.fromfile(
                config_path(model, 'finetune', f'{tag}-{reduction}', layers,
                            root=CONFIGS))
            assert reductions_tag(reductions_of(cfg)) == (
                f'{reduction}-{EXACT}')
            hooks = cfg.custom_hooks
            if reduction == 'ckpt':
                assert hooks[-1] == dict(type='ActivationCheckpointHook')
                hooks = hooks[:-1]
            assert hooks == base.custom_hooks
            assert cfg.load_from == base.load_from
            assert cfg.train_cfg.max_iters == base.train_cfg.max_iters
            loader, optim = cfg.train_dataloader, cfg.optim_wrapper
            if reduction.startswith('mb'):
                # the same batch, in micro-batches, one update per iteration
                assert loader.batch_size * optim.accumulative_counts == (
                    base.train_dataloader.batch_size)
                assert cfg.train_cfg.whole_steps is True
            else:
                assert loader.batch_size == base.train_dataloader.batch_size
            if reduction == 'amp':
                assert optim.type == 'AutocastOptimWrapper'
                assert optim.dtype == 'bfloat16'
            else:
                assert optim.type == base.optim_wrapper.type


def test_unknown_protocol_names_are_rejected():
    with pytest.raises(ValueError, match="unknown model 'setr'"):
        config_path('setr', 'pretrain')
    with pytest.raises(ValueError, match="unknown method 'hosvd'"):
        config_path('fcn', 'finetune', 'hosvd', 5)
    with pytest.raises(ValueError, match='layers must be 5 or 10, got 7'):
        config_path('fcn', 'finetune', 'vanilla', 7)


@pytest.mark.parametrize('name,hint', [
    ('deeplabv3_r18-d8_pretrain_cityscapes-512x1024.py', 'cityscapes.py'),
    ('deeplabv3_r18-d8_hosvd-eps0.8-l5_voc12aug-512x512.py', 'voc_aug.py'),
])
def test_real_dataset_configs_say_how_to_get_the_data(name, hint, tmp_path,
                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = Config.fromfile(osp.join(CONFIGS, 'paper', 'deeplabv3', name))
    with pytest.raises(FileNotFoundError, match=hint):
        check_data_roots(cfg)


def test_ade20k_dataset_config_loads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = Config.fromfile(osp.join(CONFIGS, '_base_', 'datasets',
                                   'ade20k.py'))
    with pytest.raises(FileNotFoundError, match='ADEChallengeData2016'):
        check_data_roots(cfg)


# the real-dataset ones choose ranks from eps instead (see
# tests/test_real_dataset_configs.py)
@pytest.mark.parametrize(
    'path', [p for p in ALL if 'hosvd-subspace' in osp.basename(p)
             and osp.relpath(p, CONFIGS).split(osp.sep)[0] != 'paper'],
    ids=lambda p: osp.basename(p))
def test_subspace_configs_state_their_budget_as_a_fixed_number(path):
    with open(path, encoding='utf-8') as f:
        text = f.read()
    budget = Config.fromfile(path).custom_hooks[0]['budget_mb']
    assert f'within a fixed budget of {budget:g} MB' in text


#: Models whose lean configs keep the classifier's input whole: there a
#: HOSVD form at eps 0.99 kept 55% of it (docs/methods.md, `lean_eps`).
WHOLE_CLASSIFIER = ('segformer', )


@pytest.mark.parametrize('model', MODEL_NAMES)
def test_lean_configs_of_a_model_share_their_thresholds(model):
    folder, prefix = MODEL_CONFIGS[model]
    paths = glob.glob(osp.join(CONFIGS, folder, f'{prefix}_*-lean*.py'))
    assert len(paths) >= 4
    found = {
        osp.basename(p): Config.fromfile(p).custom_hooks[0]['lean_eps']
        for p in paths
    }
    classifier = None if model in WHOLE_CLASSIFIER else 0.99
    assert all(v == dict(norm=0.8, classifier=classifier)
               for v in found.values()), found
