"""One decomposition for several convolutions that read the same tensor."""
import pytest
import torch
from torch.testing import assert_close

from mmseg_hosvd.ops import (
    ConvGeometry,
    SharedDecomposition,
    hosvd_conv2d,
    quantized_conv2d,
    svd_conv2d,
)
from mmseg_hosvd.ops.quantized_linear import quantized_linear


@pytest.mark.parametrize('function', [hosvd_conv2d, svd_conv2d])
def test_branches_share_and_match_separate_decompositions(function):
    x = torch.randn(4, 6, 9, 9, dtype=torch.float64).relu()
    weights = [
        torch.randn(5, 6, 3, 3, dtype=torch.float64, requires_grad=True)
        for _ in range(3)
    ]
    geos = [ConvGeometry.make(1, d, d) for d in (1, 2, 3)]
    grads = [torch.randn(4, 5, 9, 9, dtype=torch.float64) for _ in range(3)]
    shared = SharedDecomposition()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(
            lambda t: saved.append(t) or t, lambda t: t):
        outs = [function(x, w, None, g, eps=0.8, shared=shared)
                for w, g in zip(weights, geos, strict=True)]
    first, *others = [stored for _, stored in outs]
    assert first.numel > 0 and not first.shared
    assert all(o.numel == 0 and o.shared and o.ranks == first.ranks
               for o in others)
    activations = {t.untyped_storage().data_ptr() for t in saved
                   if not any(t is w for w in weights)}
    assert len(activations) == (5 if function is hosvd_conv2d else 2)
    together = torch.autograd.grad([o for o, _ in outs], weights, grads)
    for w, g, grad_out, got in zip(weights, geos, grads, together,
                                   strict=True):
        alone, _ = function(x, w, None, g, eps=0.8)
        (want, ) = torch.autograd.grad(alone, [w], grad_out)
        assert_close(got, want)


def test_a_new_tensor_is_decomposed_again():
    shared = SharedDecomposition()
    calls = []
    a, b = torch.randn(2), torch.randn(2)
    shared.get(a, lambda: calls.append('a') or 1)
    value, first = shared.get(a, lambda: calls.append('again') or 2)
    assert (value, first) == (1, False)
    value, first = shared.get(b, lambda: calls.append('b') or 3)
    assert (value, first) == (3, True)
    assert calls == ['a', 'b']


def _seeded():
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize('layer', ['conv', 'linear'])
def test_quantized_layers_store_the_codes_of_a_shared_input_once(layer):
    """DeepLabV3's four ASPP branches read one tensor: its 8-bit codes are
    stored once, and each layer's weight gradient is the one it would get
    alone from the same codes."""
    if layer == 'conv':
        x = torch.randn(4, 6, 9, 9, dtype=torch.float64).relu()
        weights = [torch.randn(5, 6, 3, 3, dtype=torch.float64,
                               requires_grad=True) for _ in range(3)]
        geos = [ConvGeometry.make(1, d, d) for d in (1, 2, 3)]
        grads = [torch.randn(4, 5, 9, 9, dtype=torch.float64)
                 for _ in range(3)]

        def run(w, geo, shared=None):
            return quantized_conv2d(x, w, None, geo, 8, 16, _seeded(),
                                    shared)
    else:
        x = torch.randn(4, 7, 6, dtype=torch.float64)
        weights = [torch.randn(5, 6, dtype=torch.float64,
                               requires_grad=True) for _ in range(3)]
        geos = [None] * 3
        grads = [torch.randn(4, 7, 5, dtype=torch.float64)
                 for _ in range(3)]

        def run(w, geo, shared=None):
            return quantized_linear(x, w, None, 8, 16, _seeded(), shared)

    shared = SharedDecomposition()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(
            lambda t: saved.append(t) or t, lambda t: t):
        outs = [run(w, g, shared) for w, g in zip(weights, geos, strict=True)]
    first, *others = [stored for _, stored in outs]
    assert first.numel > 0 and not first.shared
    assert all(o.numel == 0 and o.shared for o in others)
    activations = {t.untyped_storage().data_ptr() for t in saved
                   if not any(t is w for w in weights)}
    assert len(activations) == 3  # codes, group minima, group steps
    together = torch.autograd.grad([o for o, _ in outs], weights, grads)
    for w, g, grad_out, got in zip(weights, geos, grads, together,
                                   strict=True):
        alone, _ = run(w, g)
        (want, ) = torch.autograd.grad(alone, [w], grad_out)
        assert_close(got, want)
