"""Decompositions read a permuted (channels-last) tensor where it lies."""
import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from mmseg_hosvd.ops import hosvd, tucker_to_tensor
from mmseg_hosvd.ops.dense_layout import dense_layout
from mmseg_hosvd.ops.subspace import subspace_hosvd


def low_rank(shape, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=gen, dtype=torch.float64)
    return x + 3 * torch.randn(shape[0], 1, *shape[2:], generator=gen,
                               dtype=torch.float64)


@pytest.mark.parametrize('order', list(itertools.permutations(range(4))))
def test_any_memory_order_is_read_without_a_copy(order):
    x = low_rank((2, 3, 4, 5))
    stored = x.permute(order).contiguous()
    inverse = [order.index(mode) for mode in range(4)]
    view = stored.permute(inverse)  # x's values in another memory order
    dense, found = dense_layout(view)
    assert dense.is_contiguous()
    assert dense.data_ptr() == stored.data_ptr()
    assert_close(dense, view.permute(found), rtol=0, atol=0)


def test_a_tensor_no_permutation_makes_dense_is_copied_once():
    x = low_rank((2, 3, 4, 6))[:, :, :, ::2]
    dense, order = dense_layout(x)
    assert order == (0, 1, 2, 3) and dense.is_contiguous()
    assert_close(dense, x, rtol=0, atol=0)


@settings(max_examples=25, deadline=None)
@given(shape=st.tuples(*[st.integers(1, 6)] * 4),
       eps=st.sampled_from([0.5, 0.8, 0.95, 1.0]),
       solver=st.sampled_from(['eigh', 'ritz']))
def test_hosvd_of_a_channels_last_tensor_equals_the_contiguous_one(
        shape, eps, solver):
    x = low_rank(shape)
    core, factors = hosvd(x, eps=eps, solver=solver)
    channels_last = x.contiguous(memory_format=torch.channels_last)
    core_cl, factors_cl = hosvd(channels_last, eps=eps, solver=solver)
    assert core_cl.shape == core.shape and core_cl.is_contiguous()
    assert [f.shape for f in factors_cl] == [f.shape for f in factors]
    assert_close(tucker_to_tensor((core_cl, factors_cl)),
                 tucker_to_tensor((core, factors)))


def test_subspace_hosvd_of_a_channels_last_tensor_equals_the_contiguous_one():
    x = low_rank((4, 16, 8, 8))
    ranks = (3, 5, 4, 4)
    core, factors = subspace_hosvd(x, ranks)
    core_cl, factors_cl = subspace_hosvd(
        x.contiguous(memory_format=torch.channels_last), ranks, factors)
    core_again, factors_again = subspace_hosvd(x, ranks, factors)
    assert core_cl.shape == core.shape == (3, 5, 4, 4)
    assert_close(tucker_to_tensor((core_cl, factors_cl)),
                 tucker_to_tensor((core_again, factors_again)))
