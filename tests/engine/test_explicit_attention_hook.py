"""ExplicitAttentionHook in real MMEngine Runners; optimizer rebinding."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner, load_checkpoint
from mmseg.registry import HOOKS, MODELS
from torch import nn

from mmseg_hosvd.engine.optimizer_rebind import rebind_parameters_
from mmseg_hosvd.models import ExplicitMultiheadAttention
from mmseg_hosvd.selection.attention_swap import (
    explicit_attention_,
    find_attention,
    replaced_parameters,
)

from ..helpers import ROOT, tiny_runner_config

LAST = 'backbone.layers.1.1.0.attn.attn'
FIRST = 'backbone.layers.0.1.0.attn.attn'
TRAINED = [f'{LAST}.q_proj', f'{LAST}.v_proj']


pytestmark = pytest.mark.usefixtures('one_thread')


class StopBeforeTraining(Exception):
    """Ends a run whose set-up is all that a test needs."""


@HOOKS.register_module()
class InitialStateTestHook(Hook):
    """Copies the state dict at ``before_train``; optionally stops there."""

    priority = 'VERY_HIGH'

    def __init__(self, stop=False):
        self.stop = stop

    def before_train(self, runner):
        self.state = {k: v.clone()
                      for k, v in runner.model.state_dict().items()}
        if self.stop:
            raise StopBeforeTraining


def segformer_config(work_dir, data_root, swap=True, stop=False,
                     probe=None):
    """A tiny SegFormer (two MiT stages) fine-tuning the last block's query
    and value projections and the head's fusion conv, from scratch, for 2
    iterations; ``probe`` replaces the InitialStateTestHook."""
    hooks = [dict(type='ExplicitAttentionHook')] if swap else []
    hooks += [
        dict(type='CompressConvHook', method='vanilla', preset=None,
             layers=['decode_head.fusion_conv.conv'],
             trainable=TRAINED if swap else []),
        probe or dict(type='InitialStateTestHook', stop=stop)
    ]
    cfg = tiny_runner_config('fcn', str(work_dir), data_root, hooks)
    cfg.model.backbone = dict(
        type='MixVisionTransformer', in_channels=3, embed_dims=8,
        num_stages=2, num_layers=[1, 1], num_heads=[1, 2],
        patch_sizes=[7, 3], strides=[4, 2], sr_ratios=[2, 1],
        out_indices=(0, 1), mlp_ratio=2, drop_path_rate=0.)
    cfg.model.decode_head = dict(
        type='SegformerHead', in_channels=[8, 16], in_index=[0, 1],
        channels=16, dropout_ratio=0.,
        num_classes=cfg.model.decode_head.num_classes,
        norm_cfg=cfg.model.decode_head.norm_cfg, align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0))
    cfg.model.pop('auxiliary_head', None)
    cfg.default_hooks.checkpoint.interval = 1
    cfg.train_cfg.val_interval = 1000
    return cfg


def initial_state(runner):
    return next(h for h in runner.hooks
                if isinstance(h, InitialStateTestHook)).state


def test_swapped_run_trains_the_projections_and_saves_plain_checkpoints(
        tiny_data, tmp_path):
    plain = Runner.from_cfg(
        segformer_config(tmp_path / 'plain', tiny_data, False, stop=True))
    with pytest.raises(StopBeforeTraining):
        plain.train()
    runner = Runner.from_cfg(segformer_config(tmp_path / 'a', tiny_data))
    runner.train()
    model = runner.model
    assert isinstance(model.get_submodule(LAST), ExplicitMultiheadAttention)
    assert not find_attention(model)
    # initialised before the swap: it starts as the unswapped run does
    start = initial_state(runner)
    assert start.keys() == initial_state(plain).keys()
    for key, value in initial_state(plain).items():
        torch.testing.assert_close(start[key], value, rtol=0, atol=0)
    state = model.state_dict()
    params = dict(model.named_parameters())
    for name in (f'{FIRST}.q_proj.weight', f'{LAST}.k_proj.weight',
                 f'{LAST}.out_proj.weight', f'{LAST}.q_proj.weight'):
        assert params[name].requires_grad == name.startswith(tuple(TRAINED))
    for key in (f'{FIRST}.in_proj_weight', f'{FIRST}.in_proj_bias'):
        assert torch.equal(state[key], start[key])
    # rows of the packed weight: q moved, k stayed, v moved
    moved = (state[f'{LAST}.in_proj_weight'] -
             start[f'{LAST}.in_proj_weight']).abs().view(3, 16, 16)
    assert moved[0].max() > 0 and moved[1].max() == 0 and moved[2].max() > 0
    unswapped = MODELS.build(runner.cfg.model)
    load_checkpoint(unswapped, osp.join(tmp_path, 'a', 'iter_2.pth'),
                    strict=True)
    assert find_attention(unswapped)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(unswapped.eval()._forward(x),
                                   model.eval()._forward(x))


def test_resumed_swapped_run_ends_as_the_uninterrupted_one(tiny_data,
                                                          tmp_path):
    Runner.from_cfg(segformer_config(tmp_path, tiny_data)).train()
    uninterrupted = torch.load(tmp_path / 'iter_2.pth', weights_only=False)
    cfg = segformer_config(tmp_path, tiny_data)
    cfg.resume = True
    cfg.load_from = str(tmp_path / 'iter_1.pth')
    resumed = Runner.from_cfg(cfg)
    resumed.train()
    assert resumed.iter == 2
    state = resumed.model.state_dict()
    assert state.keys() == uninterrupted['state_dict'].keys()
    for key, value in uninterrupted['state_dict'].items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=0)


def test_two_processes_train_the_new_parameters_in_lockstep(tiny_data,
                                                            tmp_path):
    """Each rank reads other images; without a new DDP wrapper around the
    swapped model, the projections' gradients would not be averaged."""
    cfg = segformer_config(tmp_path, tiny_data,
                           probe=dict(type='DistProbeTestHook'))
    cfg.custom_imports['imports'].append('tests.dist_probe_hook')
    cfg.dump(str(tmp_path / 'dist_swap.py'))
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHON=sys.executable,
               PORT=str(29300 + os.getpid() % 300))
    result = subprocess.run(
        ['bash', 'tools/dist_train.sh', str(tmp_path / 'dist_swap.py'), '2',
         '--work-dir', str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    ranks = [torch.load(tmp_path / f'rank{r}.pth', weights_only=False)
             for r in range(2)]
    assert [p['wrapper'] for p in ranks] == ['MMDistributedDataParallel'] * 2
    first, second = (p['state_dict'] for p in ranks)
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0)
    key = f'{LAST}.in_proj_weight'
    start = torch.load(tmp_path / 'iter_1.pth', weights_only=False)
    assert not torch.equal(first[key][:16], start['state_dict'][key][:16])


def model_and_optimizer():
    model = nn.ModuleDict(dict(
        attn=nn.MultiheadAttention(8, 2),
        head=nn.Linear(8, 3)))
    optimizer = torch.optim.SGD(
        [dict(params=[model.head.weight, model.attn.in_proj_weight],
              lr=0.5, weight_decay=0.1),
         dict(params=[model.attn.in_proj_bias, model.attn.out_proj.weight,
                      model.attn.out_proj.bias, model.head.bias])],
        lr=0.01, momentum=0.9)
    return model, optimizer


def swap_and_rebind(model, optimizer):
    old = find_attention(model)
    explicit_attention_(model)
    return rebind_parameters_(
        OptimWrapper(optimizer),
        replaced_parameters(old['attn'], model.attn))


def test_rebinding_keeps_groups_and_their_options():
    model, optimizer = model_and_optimizer()
    assert swap_and_rebind(model, optimizer) == 2
    attn = model.attn
    first, second = optimizer.param_groups
    assert first['params'] == [
        model.head.weight, attn.q_proj.weight, attn.k_proj.weight,
        attn.v_proj.weight
    ]
    assert second['params'] == [
        attn.q_proj.bias, attn.k_proj.bias, attn.v_proj.bias,
        attn.out_proj.weight, attn.out_proj.bias, model.head.bias
    ]
    assert (first['lr'], first['weight_decay']) == (0.5, 0.1)
    assert (second['lr'], second['weight_decay']) == (0.01, 0)


def test_rebinding_after_a_step_is_refused():
    model, optimizer = model_and_optimizer()
    x = torch.randn(4, 1, 8)
    model.attn(x, x, x)[0].sum().backward()
    optimizer.step()
    with pytest.raises(RuntimeError, match=r'\(24, 8\).*before the first'):
        swap_and_rebind(model, optimizer)
    with pytest.raises(TypeError, match='got dict'):
        rebind_parameters_({}, {})
