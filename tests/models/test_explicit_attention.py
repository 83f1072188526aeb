"""ExplicitMultiheadAttention against torch's nn.MultiheadAttention."""
import copy
import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from mmseg_hosvd.models import ExplicitMultiheadAttention

N, L, S, E, HEADS = 3, 5, 7, 8, 2
# (batch_first, bias, kdim == vdim): every combination
LAYOUTS = list(itertools.product([False, True], [True, False], [None, 6]))


pytestmark = pytest.mark.usefixtures('one_thread')


def pair(embed=E, heads=HEADS, kdim=None, bias=True, batch_first=False,
         dropout=0.):
    """A float64 nn.MultiheadAttention with random (non-zero) Parameters,
    and its explicit twin built from an independent copy."""
    mha = nn.MultiheadAttention(embed, heads, dropout=dropout, bias=bias,
                                kdim=kdim, vdim=kdim,
                                batch_first=batch_first, dtype=torch.float64)
    with torch.no_grad():
        for param in mha.parameters():
            param.copy_(torch.randn_like(param) * 0.5)
    return mha, ExplicitMultiheadAttention.from_attention(copy.deepcopy(mha))


def inputs(mha, batch=N, tgt=L, src=S, batched=True):
    """Query, key and value leaves in ``mha``'s layout."""
    shapes = [(tgt, mha.embed_dim), (src, mha.kdim), (src, mha.vdim)]
    if batched:
        shapes = [(batch, ) + s if mha.batch_first else (s[0], batch, s[1])
                  for s in shapes]
    return [torch.randn(s, dtype=torch.float64, requires_grad=True)
            for s in shapes]


def packed_grads(module):
    """Parameter gradients under nn.MultiheadAttention's names."""
    if isinstance(module, nn.MultiheadAttention):
        return {n: p.grad for n, p in module.named_parameters()}
    grads = {f'out_proj.{n}': p.grad
             for n, p in module.out_proj.named_parameters()}
    projections = (module.q_proj, module.k_proj, module.v_proj)
    if module._qkv_same_embed_dim:
        grads['in_proj_weight'] = torch.cat([p.weight.grad
                                             for p in projections])
    else:
        grads.update({f'{x}_proj_weight': p.weight.grad
                      for x, p in zip('qkv', projections, strict=True)})
    if module.q_proj.bias is not None:
        grads['in_proj_bias'] = torch.cat([p.bias.grad for p in projections])
    return grads


def run(module, args, **kwargs):
    """Outputs, and the gradients of a random projection of them."""
    module.zero_grad()
    leaves = [a.detach().requires_grad_() for a in args]
    out, weights = module(*leaves, **kwargs)
    gen = torch.Generator().manual_seed(1)
    loss = (out * torch.randn(out.shape, generator=gen,
                              dtype=out.dtype)).sum()
    if weights is not None:
        loss = loss + (weights * torch.randn(
            weights.shape, generator=gen, dtype=weights.dtype)).sum()
    loss.backward()
    return out, weights, [x.grad for x in leaves], packed_grads(module)


def assert_same(mha, explicit, args, **kwargs):
    expected, got = run(mha, args, **kwargs), run(explicit, args, **kwargs)
    torch.testing.assert_close(got[0], expected[0])
    if expected[1] is None:
        assert got[1] is None
    else:
        torch.testing.assert_close(got[1], expected[1])
    torch.testing.assert_close(got[2], expected[2])
    assert got[3].keys() == expected[3].keys()
    for name in expected[3]:
        torch.testing.assert_close(got[3][name], expected[3][name])


def masks(kind, batch=N, tgt=L, src=S):
    """Masks of one kind ('none' or 'target-dtype'); bool ones never mask a
    whole row."""
    if kind == 'none':
        return {}
    target, dtype = kind.split('-')

    def make(*shape):
        if dtype == 'float':
            return torch.randn(shape, dtype=torch.float64)
        mask = torch.rand(shape) < 0.4
        mask[..., 0] = False
        return mask

    attn = {'attn2d': (tgt, src), 'attn3d': (batch * HEADS, tgt, src),
            'both': (batch * HEADS, tgt, src)}.get(target)
    return dict(
        key_padding_mask=(make(batch, src)
                          if target in ('padding', 'both') else None),
        attn_mask=None if attn is None else make(*attn))


WEIGHTS = [dict(need_weights=True, average_attn_weights=True),
           dict(need_weights=True, average_attn_weights=False),
           dict(need_weights=False)]


@pytest.mark.parametrize('weights', WEIGHTS, ids=['avg', 'per-head', 'none'])
@pytest.mark.parametrize('kind', [
    'none', 'padding-bool', 'padding-float', 'attn2d-bool', 'attn2d-float',
    'attn3d-bool', 'attn3d-float', 'both-bool', 'both-float'
])
def test_same_outputs_and_gradients(kind, weights):
    for batch_first, bias, kdim in LAYOUTS:
        mha, explicit = pair(kdim=kdim, bias=bias, batch_first=batch_first)
        assert_same(mha, explicit, inputs(mha), **masks(kind), **weights)


@pytest.mark.parametrize('weights', WEIGHTS, ids=['avg', 'per-head', 'none'])
def test_unbatched_inputs(weights):
    for batch_first, bias, kdim in LAYOUTS:
        mha, explicit = pair(kdim=kdim, bias=bias, batch_first=batch_first)
        padding, attn = torch.rand(S) < 0.4, torch.rand(HEADS, L, S) < 0.3
        padding[0] = attn[..., 0] = False
        assert_same(mha, explicit, inputs(mha, batched=False),
                    key_padding_mask=padding, attn_mask=attn, **weights)


@pytest.mark.parametrize('need_weights', [True, False])
def test_causal_hint(need_weights):
    mha, explicit = pair(batch_first=True)
    causal = torch.ones(L, L, dtype=torch.bool).triu(1)
    args = inputs(mha, src=L)
    assert_same(mha, explicit, args, attn_mask=causal, is_causal=True,
                need_weights=need_weights)
    with pytest.raises(RuntimeError, match='is_causal'):
        explicit(*args, is_causal=True)


@settings(max_examples=25, deadline=None)
@given(heads=st.integers(1, 3), head_dim=st.integers(1, 4),
       batch=st.integers(1, 3), tgt=st.integers(1, 6),
       src=st.integers(1, 6), kdim=st.sampled_from([None, 3]),
       batch_first=st.booleans(), bias=st.booleans(),
       need_weights=st.booleans(), seed=st.integers(0, 2**16))
def test_random_shapes(heads, head_dim, batch, tgt, src, kdim, batch_first,
                       bias, need_weights, seed):
    torch.manual_seed(seed)
    mha, explicit = pair(heads * head_dim, heads, kdim, bias, batch_first)
    padding = torch.rand(batch, src) < 0.3
    padding[:, 0] = False
    assert_same(mha, explicit, inputs(mha, batch, tgt, src),
                key_padding_mask=padding, need_weights=need_weights)


@pytest.mark.parametrize('need_weights', [True, False])
def test_dropout_is_equivalent_in_distribution(need_weights):
    """Dropout draws differ from torch's; both are unbiased, and eval mode
    is exact."""
    mha, explicit = pair(dropout=0.5)
    args = [a.detach() for a in inputs(mha)]
    expected = mha.eval()(*args)[0]
    torch.testing.assert_close(explicit.eval()(*args)[0], expected)
    mha.train()
    explicit.train()
    with torch.no_grad():
        dropped = explicit(*args, need_weights=need_weights)[0]
        assert not torch.allclose(dropped, expected)
        means = [
            torch.stack([m(*args, need_weights=need_weights)[0]
                         for _ in range(600)]).mean(0)
            for m in (mha, explicit)
        ]
    scale = expected.abs().mean()
    for mean in means:
        assert (mean - expected).abs().mean() < 0.1 * scale


def test_dropped_weights_are_returned_as_torch_returns_them():
    mha, explicit = pair(dropout=0.5)
    args = [a.detach() for a in inputs(mha, tgt=20, src=20)]
    kept = explicit.eval()(*args, average_attn_weights=False)[1]
    dropped = explicit.train()(*args, average_attn_weights=False)[1]
    zero = dropped == 0
    assert 0.4 < zero.double().mean() < 0.6
    torch.testing.assert_close(dropped[~zero], kept[~zero] * 2)


def test_transformer_encoder_layer_fast_path():
    """Torch's encoder layer reads the packed weights in eval mode."""
    layer = nn.TransformerEncoderLayer(E, HEADS, 16, dropout=0.,
                                       batch_first=True).eval()
    swapped = copy.deepcopy(layer)
    swapped.self_attn = ExplicitMultiheadAttention.from_attention(
        swapped.self_attn)
    x = torch.randn(N, L, E)
    with torch.no_grad():
        torch.testing.assert_close(swapped(x), layer(x))
    torch.testing.assert_close(swapped.train()(x), layer.train()(x))


@pytest.mark.parametrize('option', [dict(add_bias_kv=True),
                                    dict(add_zero_attn=True)])
def test_unsupported_options_are_refused(option):
    name = next(iter(option))
    with pytest.raises(ValueError, match=name):
        ExplicitMultiheadAttention.from_attention(
            nn.MultiheadAttention(E, HEADS, **option))
    with pytest.raises(ValueError, match=name):
        ExplicitMultiheadAttention(E, HEADS, **option)


def test_bad_input_is_refused_with_its_value():
    explicit = ExplicitMultiheadAttention(E, HEADS)
    x = torch.randn(L, N, E)
    with pytest.raises(ValueError, match='num_heads=3'):
        ExplicitMultiheadAttention(E, 3)
    with pytest.raises(ValueError, match=r'\(5, 3, 4\)'):
        explicit(torch.randn(L, N, 4), x, x)
    with pytest.raises(ValueError, match=r'\(5, 5\).*\(6, 5, 5\).*\(4, 5\)'):
        explicit(x, x, x, attn_mask=torch.zeros(4, 5))
    with pytest.raises(ValueError, match=r'\(3, 5\).*\(5, 3\)'):
        explicit(x, x, x, key_padding_mask=torch.zeros(5, 3))
    with pytest.raises(TypeError, match='torch.int64'):
        explicit(x, x, x, key_padding_mask=torch.zeros(3, 5).long())
    with pytest.raises(TypeError, match='Linear'):
        ExplicitMultiheadAttention.from_attention(nn.Linear(E, E))
