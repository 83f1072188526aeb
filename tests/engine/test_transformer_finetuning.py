"""A transformer segmenter fine-tuned with HOSVD in a real Runner: the
attention swap makes its projections ordinary Linear layers, last-N
selection reaches them, they are compressed, and they learn."""
import torch
from mmengine.runner import Runner

from mmseg_hosvd.engine.hooks.weight_change_hook import WEIGHT_CHANGE_KEY
from mmseg_hosvd.models import LinearHOSVD
from mmseg_hosvd.reductions.lean_modules import (
    QuantizedGELU,
    QuantizedLayerNorm,
)

from .test_explicit_attention_hook import (
    FIRST,
    LAST,
    initial_state,
    segformer_config,
)

PROJECTIONS = [f'{LAST}.{p}_proj' for p in ('q', 'k', 'v', 'out')]


def test_segformer_attention_is_compressed_and_learns(tiny_data, tmp_path):
    cfg = segformer_config(tmp_path, tiny_data)
    cfg.custom_hooks[1] = dict(type='CompressConvHook', method='hosvd',
                               eps=0.8, num_layers=10)
    cfg.default_hooks.weight_change = dict(type='WeightChangeHook')
    runner = Runner.from_cfg(cfg)
    runner.train()
    model = runner.model
    for name in PROJECTIONS:
        layer = model.get_submodule(name)
        assert isinstance(layer, LinearHOSVD), name
        assert layer.weight.requires_grad
    start, state = initial_state(runner), model.state_dict()
    # the trained block's packed q/k/v rows and its output projection moved
    moved = (state[f'{LAST}.in_proj_weight'] -
             start[f'{LAST}.in_proj_weight']).abs().view(3, 16, 16)
    assert all(moved[i].max() > 0 for i in range(3))
    assert not torch.equal(state[f'{LAST}.out_proj.weight'],
                           start[f'{LAST}.out_proj.weight'])
    # the frozen first stage did not
    for key in (f'{FIRST}.in_proj_weight', f'{FIRST}.out_proj.weight',
                'backbone.layers.0.0.projection.weight'):
        assert torch.equal(state[key], start[key]), key
    # the weight-change record covers the Linear layers too
    layers = runner.message_hub.get_info(WEIGHT_CHANGE_KEY)['layers']
    for name in PROJECTIONS:
        assert layers[name]['relative_change'] > 0, name


def test_lean_bits_code_the_trained_blocks_norms_and_gelu(tiny_data,
                                                          tmp_path):
    cfg = segformer_config(tmp_path, tiny_data)
    cfg.custom_hooks[1] = dict(type='CompressConvHook', method='hosvd',
                               eps=0.8, num_layers=10, lean=True,
                               lean_bits=8)
    runner = Runner.from_cfg(cfg)
    runner.train()
    model = runner.model
    coded = [n for n, m in model.named_modules()
             if isinstance(m, (QuantizedLayerNorm, QuantizedGELU))]
    # the last block's norms and Mix-FFN activation, not the first stage's
    assert f'{LAST.rsplit(".", 2)[0]}.ffn.activate' in coded
    assert not any(n.startswith('backbone.layers.0.') for n in coded)
    start, state = initial_state(runner), model.state_dict()
    assert not torch.equal(state[f'{LAST}.out_proj.weight'],
                           start[f'{LAST}.out_proj.weight'])
    assert torch.equal(state['backbone.layers.0.1.0.norm1.weight'],
                       start['backbone.layers.0.1.0.norm1.weight'])
    meta = torch.load(tmp_path / 'iter_2.pth', map_location='cpu',
                      weights_only=False)['meta']['finetune']
    assert meta['lean_bits'] == 8
    assert set(coded) <= set(meta['lean_modules'])
