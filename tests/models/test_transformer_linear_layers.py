"""Linear layers of real mmseg transformers are selected, swapped, trained
and counted like convolutions."""
import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import nn

from mmseg_hosvd.engine import CompressConvHook
from mmseg_hosvd.models import (
    Conv2dHOSVD,
    LinearHOSVD,
    LinearHOSVDSubspace,
    select_layers,
)
from mmseg_hosvd.selection.conv_memory_counter import ConvMemoryCounter

#: The last five Linear layers and convolutions of :func:`swin_fcn`,
#: nearest the output first.
SWIN_LAST_5 = [
    'decode_head.convs.0.conv', 'backbone.stages.3.blocks.0.ffn.layers.1',
    'backbone.stages.3.blocks.0.ffn.layers.0.0',
    'backbone.stages.3.blocks.0.attn.w_msa.proj',
    'backbone.stages.3.blocks.0.attn.w_msa.qkv'
]


def swin_fcn():
    """A tiny Swin transformer with a one-convolution FCN head."""
    return MODELS.build(
        dict(
            type='EncoderDecoder',
            data_preprocessor=dict(type='SegDataPreProcessor'),
            backbone=dict(type='SwinTransformer', pretrain_img_size=64,
                          embed_dims=16, depths=(1, 1, 1, 1),
                          num_heads=(1, 1, 1, 1), window_size=4,
                          drop_path_rate=0.0, out_indices=(3, )),
            decode_head=dict(type='FCNHead', in_channels=128, in_index=0,
                             channels=16, num_convs=1, concat_input=False,
                             num_classes=3)))


def segformer():
    """A tiny SegFormer: MiT (attention through nn.MultiheadAttention)."""
    return MODELS.build(
        dict(
            type='EncoderDecoder',
            data_preprocessor=dict(type='SegDataPreProcessor'),
            backbone=dict(type='MixVisionTransformer', embed_dims=16,
                          num_layers=[1, 1, 1, 1], num_heads=[1, 2, 4, 8]),
            decode_head=dict(type='SegformerHead',
                             in_channels=[16, 32, 64, 128],
                             in_index=[0, 1, 2, 3], channels=16,
                             num_classes=3)))


def train_step(model, inputs):
    """One SGD step on a cross-entropy loss of the logits."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    logits = F.interpolate(model._forward(inputs), inputs.shape[2:],
                           mode='bilinear')
    labels = torch.randint(0, 3, (inputs.shape[0], *inputs.shape[2:]))
    F.cross_entropy(logits, labels).backward()
    optimizer.step()


def test_hosvd_swaps_and_trains_the_last_linear_layers():
    model = swin_fcn()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    plan = CompressConvHook(method='hosvd', num_layers=5).apply(model)
    assert plan.compressed == SWIN_LAST_5
    assert type(model.get_submodule(SWIN_LAST_5[0])) is Conv2dHOSVD
    for name in SWIN_LAST_5[1:]:
        assert type(model.get_submodule(name)) is LinearHOSVD, name
    assert 'eps=0.8' in plan.settings[SWIN_LAST_5[1]]
    model.train()
    counter = ConvMemoryCounter(model, plan.compressed)
    train_step(model, torch.randn(2, 3, 64, 64))
    stored = {n: model.get_submodule(n).last_stored for n in SWIN_LAST_5}
    assert all(s is not None and s.numel > 0 for s in stored.values())
    assert [len(stored[n].ranks) for n in SWIN_LAST_5] == [4, 3, 3, 3, 3]
    assert counter.elements == sum(s.numel for s in stored.values())
    trained = set(plan.trainable_modules)
    for name, param in model.named_parameters():
        owner = name.rpartition('.')[0]
        if owner in trained:
            assert not torch.equal(param, before[name]), name
        else:
            assert torch.equal(param, before[name]), name


def test_vanilla_trains_the_linear_layers_plain_and_counts_their_input():
    model = swin_fcn()
    plan = CompressConvHook(method='vanilla', num_layers=5).apply(model)
    assert plan.compressed == SWIN_LAST_5 and not plan.settings
    ffn = model.get_submodule(SWIN_LAST_5[1])
    assert type(ffn).__name__ == 'Linear' and ffn.weight.requires_grad
    model.train()
    counter = ConvMemoryCounter(model, SWIN_LAST_5[1:2])
    seen = []
    ffn.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    model._forward(torch.randn(2, 3, 64, 64))
    assert counter.elements == seen[0].numel() > 0


def test_subspace_ranks_of_linear_layers_have_one_entry_per_mode():
    model = swin_fcn()
    hook = CompressConvHook(method='hosvd_subspace', num_layers=3)
    plan = hook.apply(model)
    inputs = torch.randn(2, 3, 64, 64)
    model.train()
    assert hook.session.measure(model, inputs)
    linear = model.get_submodule(SWIN_LAST_5[1])
    assert isinstance(linear, LinearHOSVDSubspace)
    assert len(plan.results['ranks'][SWIN_LAST_5[1]]) == 3
    train_step(model, inputs)
    assert linear.last_stored.ranks == plan.results['ranks'][SWIN_LAST_5[1]]
    assert linear.factor0 is not None


def test_gradient_filter_refuses_a_linear_layer_by_name():
    model = swin_fcn()
    with pytest.raises(ValueError, match="layer 'backbone.stages.3.blocks.0."
                       "ffn.layers.1' is an nn.Linear, and method "
                       "'gradient_filter' compresses only convolutions"):
        CompressConvHook(method='gradient_filter', num_layers=2).apply(model)
    assert all(p.requires_grad for p in model.parameters())
    CompressConvHook(method='gradient_filter',
                     layers=SWIN_LAST_5[:1]).apply(model)


def test_attention_projections_are_not_selected_or_named():
    """MiT's nn.MultiheadAttention calls its projections functionally: the
    trace never sees them run, and naming one is refused."""
    model = segformer()
    out_proj = 'backbone.layers.3.1.0.attn.attn.out_proj'
    assert isinstance(model.get_submodule(out_proj), nn.Linear)
    everything = select_layers(model, num_layers=10, preset=None).compress
    assert not any('attn.attn' in name for name in everything)
    with pytest.raises(ValueError, match=f"'{out_proj}' belongs to an "
                       'nn.MultiheadAttention, which calls its projections '
                       'functionally'):
        CompressConvHook(layers=[out_proj]).apply(model)


class QKVTokens(nn.Module):
    """Image to tokens, then three projections of the same tokens."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 4, stride=4)
        self.q, self.k, self.v = (nn.Linear(8, 8) for _ in range(3))

    def forward(self, x):
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        return self.q(tokens) * self.k(tokens) + self.v(tokens)


@pytest.mark.parametrize('method', ['hosvd', 'svd'])
def test_qkv_projections_share_one_decomposition(method):
    model = QKVTokens()
    plan = CompressConvHook(method=method, layers=['q', 'k', 'v'],
                            preset=None).apply(model)
    assert plan.shared_inputs == [['q', 'k', 'v']]
    assert model.q.shared_input is model.k.shared_input is model.v.shared_input
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    q, k, v = (m.last_stored for m in (model.q, model.k, model.v))
    assert q.numel > 0 and not q.shared
    assert k.numel == v.numel == 0 and k.shared and v.shared
    assert all(m.weight.grad is not None for m in (model.q, model.k, model.v))
