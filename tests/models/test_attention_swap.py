"""Swapping real models' attention; checkpoints load both ways."""
import copy

import pytest
import torch
from mmengine.runner import load_checkpoint
from mmseg.registry import MODELS
from torch import nn

from mmseg_hosvd.models import ExplicitMultiheadAttention, explicit_attention_

E, HEADS = 8, 2
BACKBONES = {
    'mit': dict(type='MixVisionTransformer', in_channels=3, embed_dims=8,
                num_stages=2, num_layers=[1, 1], num_heads=[1, 2],
                patch_sizes=[7, 3], strides=[4, 2], sr_ratios=[2, 1],
                out_indices=(0, 1), mlp_ratio=2, drop_path_rate=0.),
    'vit': dict(type='VisionTransformer', img_size=(32, 32), patch_size=8,
                in_channels=3, embed_dims=16, num_layers=2, num_heads=2,
                mlp_ratio=2, out_indices=(0, 1), drop_path_rate=0.),
}


pytestmark = pytest.mark.usefixtures('one_thread')


def attention_names(model):
    return [n for n, m in model.named_modules()
            if isinstance(m, nn.MultiheadAttention)]


def forward_and_input_grad(model, x):
    x = x.detach().requires_grad_()
    outs = model(x)
    sum(o.square().sum() for o in outs).backward()
    return [o.detach() for o in outs], x.grad


@pytest.mark.parametrize('backbone', sorted(BACKBONES))
def test_swapped_backbone_computes_the_same(backbone):
    plain = MODELS.build(BACKBONES[backbone]).double()
    plain.init_weights()
    swapped = copy.deepcopy(plain)
    names = explicit_attention_(swapped)
    assert names == attention_names(plain) and len(names) == 2
    assert not attention_names(swapped)
    assert all(isinstance(swapped.get_submodule(n),
                          ExplicitMultiheadAttention) for n in names)
    assert list(swapped.state_dict()) == list(plain.state_dict())
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    for mode in (True, False):
        plain.train(mode)
        swapped.train(mode)
        torch.testing.assert_close(forward_and_input_grad(swapped, x),
                                   forward_and_input_grad(plain, x))
    assert explicit_attention_(swapped) == []


class Block(nn.Module):
    """A module holding an attention among other layers."""

    def __init__(self, kdim=None, bias=True):
        super().__init__()
        self.norm = nn.LayerNorm(E)
        self.attn = nn.MultiheadAttention(E, HEADS, bias=bias, kdim=kdim,
                                          vdim=kdim)
        with torch.no_grad():
            for param in self.parameters():
                param.copy_(torch.randn_like(param))
        self.kdim = kdim or E

    def forward(self, x, memory):
        return self.attn(self.norm(x), memory, memory)[0]


def swapped_block(**kwargs):
    block = Block(**kwargs)
    explicit_attention_(block)
    return block


SETTINGS = [dict(), dict(kdim=6), dict(bias=False),
            dict(kdim=6, bias=False)]


@pytest.mark.parametrize('settings', SETTINGS)
def test_state_dict_keys_are_nn_multihead_attentions(settings):
    plain = Block(**settings)
    assert list(swapped_block(**settings).state_dict()) == list(
        plain.state_dict())


@pytest.mark.parametrize('settings', SETTINGS)
@pytest.mark.parametrize('direction', ['to-swapped', 'to-plain'])
def test_checkpoint_files_load_both_ways(settings, direction, tmp_path):
    source, target = Block(**settings), swapped_block(**settings)
    if direction == 'to-plain':
        source, target = target, source
    x = torch.randn(4, 2, E)
    memory = torch.randn(5, 2, source.kdim)
    with torch.no_grad():
        expected = source(x, memory)
        assert not torch.allclose(target(x, memory), expected)
    torch.save(source.state_dict(), tmp_path / 'plain.pth')
    torch.save({'state_dict': source.state_dict(), 'meta': {}},
               tmp_path / 'mmengine.pth')
    other = copy.deepcopy(target)
    target.load_state_dict(
        torch.load(tmp_path / 'plain.pth', weights_only=True), strict=True)
    load_checkpoint(other, str(tmp_path / 'mmengine.pth'), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(target(x, memory), expected)
        torch.testing.assert_close(other(x, memory), expected)


def test_packed_weight_of_the_wrong_size_is_refused():
    state = Block().state_dict()
    state['attn.in_proj_weight'] = state['attn.in_proj_weight'][:-2]
    with pytest.raises(RuntimeError, match=r'in_proj_weight must have 3 \* '
                       r'embed_dim = 24 rows, got shape \(22, 8\)'):
        swapped_block().load_state_dict(state)


def test_shared_attention_is_swapped_once():
    attention = nn.MultiheadAttention(E, HEADS)
    model = nn.ModuleDict(dict(a=attention, b=nn.ModuleList([attention])))
    assert explicit_attention_(model) == ['a', 'b.0']
    assert model['a'] is model['b'][0]
    assert isinstance(model['a'], ExplicitMultiheadAttention)


def test_subclass_is_refused_by_name():
    class Custom(nn.MultiheadAttention):
        pass

    model = nn.Sequential(nn.Linear(E, E), Custom(E, HEADS))
    with pytest.raises(TypeError, match='1 is a Custom'):
        explicit_attention_(model)


def test_converted_module_keeps_parameters_and_flags():
    attention = nn.MultiheadAttention(E, HEADS, kdim=6, vdim=5).eval()
    attention.in_proj_bias.requires_grad_(False)
    explicit = ExplicitMultiheadAttention.from_attention(attention)
    assert not explicit.training
    assert explicit.k_proj.weight is attention.k_proj_weight
    assert explicit.v_proj.weight is attention.v_proj_weight
    assert explicit.out_proj is attention.out_proj
    assert explicit.q_proj.weight.requires_grad
    assert not any(p.bias.requires_grad for p in (
        explicit.q_proj, explicit.k_proj, explicit.v_proj))
    torch.testing.assert_close(explicit.in_proj_bias, attention.in_proj_bias)
    assert explicit.in_proj_weight is None
