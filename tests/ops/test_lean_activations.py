"""Bit-mask ReLU and frozen BatchNorm against the modules they replace."""
from itertools import pairwise

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.testing import assert_close

from mmseg_hosvd.ops.lean_activations import (
    pack_bits,
    pack_mask,
    unpack_bits,
    unpack_mask,
)
from mmseg_hosvd.reductions.lean_modules import (
    BitMaskReLU,
    LeanFrozenBatchNorm2d,
)
from mmseg_hosvd.utils import SavedTensorMeter


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 7), min_size=1, max_size=4))
def test_pack_unpack_round_trip(shape):
    mask = torch.rand(shape) > 0.5
    packed = pack_bits(mask)
    assert packed.dtype == torch.uint8
    assert packed.numel() == -(-mask.numel() // 8)
    assert torch.equal(unpack_bits(packed, mask.shape), mask)


def layouts(shape):
    """The same values as a contiguous, a channels-last and a permuted
    tensor."""
    x = torch.randn(shape)
    return [x, x.contiguous(memory_format=torch.channels_last),
            x.permute(3, 1, 0, 2).contiguous().permute(2, 1, 3, 0)]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=4, max_size=4))
def test_a_mask_is_packed_in_memory_order(shape):
    """A dense mask is packed as it lies in memory (a channels-last one as
    NHWC, without a transposing copy) and comes back with its strides; a
    non-dense one (a strided slice) round-trips contiguous."""
    wide = torch.rand(shape[:3] + [2 * shape[3]]) > 0.5
    masks = [m > 0 for m in layouts(shape)] + [wide[..., ::2]]
    for index, mask in enumerate(masks):
        packed, stored, order = pack_mask(mask)
        assert packed.numel() == -(-mask.numel() // 8)
        if index == 1:
            assert order == (0, 2, 3, 1) or mask.is_contiguous()
        if order != tuple(range(4)):
            assert torch.equal(packed, pack_bits(mask.permute(order)))
        got = unpack_mask(packed, stored, order)
        assert torch.equal(got, mask)
        like = mask if index < 3 else mask.contiguous()
        # strides of size-1 dimensions do not matter
        assert [got.stride(d) for d in range(4) if mask.shape[d] > 1] == [
            like.stride(d) for d in range(4) if mask.shape[d] > 1]


def test_a_channels_last_mask_is_packed_as_nhwc():
    mask = torch.rand(2, 3, 4, 5).contiguous(
        memory_format=torch.channels_last) > 0.5
    packed, stored, order = pack_mask(mask)
    assert (order, stored) == ((0, 2, 3, 1), (2, 4, 5, 3))
    assert torch.equal(packed, pack_bits(mask.permute(0, 2, 3, 1)))


@pytest.mark.parametrize('upper', [None, 6.0])
@pytest.mark.parametrize('layout', range(3))
def test_bitmask_relu_gradient_keeps_the_layout(layout, upper):
    """ReLU and ReLU6 of a channels-last (or permuted) input: exact input
    gradients, in the input's layout as ``torch.relu``'s."""
    x = (layouts((2, 5, 6, 3))[layout] * 4).requires_grad_()
    grad = torch.randn_like(x)
    reference = torch.relu(x) if upper is None else x.clamp(0, upper)
    (expected, ) = torch.autograd.grad(reference, [x], grad)
    (got, ) = torch.autograd.grad(BitMaskReLU(upper)(x), [x], grad)
    assert_close(got, expected)
    assert got.stride() == expected.stride()


@pytest.mark.parametrize('reference', [nn.ReLU(), nn.ReLU(inplace=True),
                                       nn.ReLU6()])
def test_bitmask_relu_is_exact_and_keeps_one_bit(reference):
    lean = BitMaskReLU.from_module(reference)
    x = (torch.randn(4, 8, 9, 9) * 4).requires_grad_()
    grad = torch.randn(4, 8, 9, 9)
    expected_out = reference(x.clone())
    (expected, ) = torch.autograd.grad(expected_out, [x], grad)
    with SavedTensorMeter() as meter:
        out = lean(x)
    (got, ) = torch.autograd.grad(out, [x], grad)
    assert_close(out, expected_out)
    assert_close(got, expected)
    assert meter.bytes == -(-x.numel() // 8)


def frozen_bn(affine=True):
    bn = nn.BatchNorm2d(6, affine=affine).double()
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    if affine:
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-1, 1)
    return bn.eval()


@pytest.mark.parametrize('affine', [True, False])
def test_frozen_bn_exact_at_full_rank(affine):
    bn = frozen_bn(affine)
    lean = LeanFrozenBatchNorm2d.from_module(bn, compress_eps=1.0).eval()
    assert lean.running_mean is bn.running_mean
    x = torch.randn(3, 6, 7, 5, dtype=torch.float64, requires_grad=True)
    leaves = [x] + ([bn.weight, bn.bias] if affine else [])
    ref = bn(x)
    grad = torch.randn_like(ref)
    expected = torch.autograd.grad(ref, leaves, grad)
    out = lean(x)
    assert_close(out, ref)
    for got, want in zip(torch.autograd.grad(out, leaves, grad), expected,
                         strict=True):
        assert_close(got, want)


def test_frozen_bn_stores_nothing_full_size():
    bn = frozen_bn()
    bn.weight.requires_grad_(False)
    bn.bias.requires_grad_(False)
    lean = LeanFrozenBatchNorm2d.from_module(bn).eval()
    x = torch.randn(4, 6, 16, 16, dtype=torch.float64, requires_grad=True)
    with SavedTensorMeter.for_model(lean) as meter:
        lean(x)
    assert meter.bytes < 6 * 8 * 4  # per-channel vectors only


def test_frozen_bn_weight_gradient_error_falls_with_eps():
    bn = frozen_bn()
    base = torch.randn(4, 2, 12, 12, dtype=torch.float64)
    mix = torch.randn(6, 2, dtype=torch.float64)
    x = (torch.einsum('bkhw,ck->bchw', base, mix) +
         0.05 * torch.randn(4, 6, 12, 12, dtype=torch.float64))
    grad = torch.randn(4, 6, 12, 12, dtype=torch.float64)
    (want, ) = torch.autograd.grad(bn(x), [bn.weight], grad)
    errors = []
    for eps in (0.5, 0.9, 0.99, 0.9999, 1.0):
        lean = LeanFrozenBatchNorm2d.from_module(bn, compress_eps=eps).eval()
        (got, ) = torch.autograd.grad(lean(x), [bn.weight], grad)
        errors.append(float((got - want).norm() / want.norm()))
        (bias_grad, ) = torch.autograd.grad(lean(x), [bn.bias], grad)
        assert_close(bias_grad, grad.sum((0, 2, 3)))  # always exact
    assert all(a >= b for a, b in pairwise(errors)), errors
    assert errors[-1] < 1e-10 < errors[0]


def test_training_mode_is_plain_batch_norm():
    bn = frozen_bn()
    lean = LeanFrozenBatchNorm2d.from_module(bn).train()
    x = torch.randn(3, 6, 4, 4, dtype=torch.float64)
    assert_close(lean(x), nn.functional.batch_norm(
        x, None, None, bn.weight, bn.bias, True, 0.0, bn.eps))
