"""The shared autograd function of the compressed convolutions."""
import pytest
import torch
from torch.testing import assert_close

from mmseg_hosvd.ops import ConvGeometry, conv2d_weight_grad
from mmseg_hosvd.ops import gradient_filter_conv as gradient_filter
from mmseg_hosvd.ops.compressed_conv_function import (
    BackwardRule,
    compressed_conv2d,
    decomposed_conv2d,
)

from .conv_cases import CASES, case_id, make_conv, reference_grads


class StoreInputRule(BackwardRule):
    """The simplest method: store the input itself."""

    def weight_grad(self, stored, grad, weight_shape, geo, input_shape):
        return conv2d_weight_grad(stored[0], weight_shape, grad, geo)

    def ranks(self, stored):
        return None


@pytest.mark.parametrize('case', CASES, ids=case_id)
def test_a_rule_needs_only_its_weight_gradient(case):
    conv, x = make_conv(case)
    expected_out, grad_out, expected = reference_grads(conv, x)
    x2 = x.detach().clone().requires_grad_()
    out, stored = compressed_conv2d(x2, conv.weight, conv.bias,
                                    ConvGeometry.of(conv), StoreInputRule(),
                                    (x2.detach(), ))
    assert stored.numel == x.numel() and stored.ranks is None
    params = [conv.weight] + ([conv.bias] if conv.bias is not None else [])
    assert_close(out, expected_out)
    for got, want in zip(torch.autograd.grad(out, [x2] + params, grad_out),
                         expected, strict=True):
        assert_close(got, want)


def test_decomposed_conv2d_decomposes_only_when_the_weight_trains():
    x = torch.randn(2, 3, 6, 6)
    weight = torch.randn(4, 3, 3, 3)
    calls = []

    def decompose(tensor):
        calls.append(tensor)
        return (tensor.detach().clone(), )

    geo = ConvGeometry.make(1, 1)
    out, stored, tensors = decomposed_conv2d(x, weight, None, geo,
                                             StoreInputRule(), decompose,
                                             None)
    assert stored is None and tensors is None and calls == []
    out, stored, tensors = decomposed_conv2d(x, weight.requires_grad_(),
                                             None, geo, StoreInputRule(),
                                             decompose, None)
    assert calls == [x] and stored.numel == x.numel() and not stored.shared
    assert torch.equal(tensors[0], x)


def test_gradient_filter_pools_the_output_gradient_once(monkeypatch):
    pooled = []
    real = gradient_filter.PatchGrid.pool

    def counting(grid, tensor, index):
        pooled.append(index is grid.out_index)
        return real(grid, tensor, index)

    monkeypatch.setattr(gradient_filter.PatchGrid, 'pool', counting)
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    weight = torch.randn(6, 4, 3, 3, requires_grad=True)
    out, _ = gradient_filter.gradient_filter_conv2d(
        x, weight, None, ConvGeometry.make(1, 1), 2)
    assert pooled == [False]  # the input means
    torch.autograd.grad(out, [x, weight], torch.randn_like(out))
    assert pooled == [False, True]
