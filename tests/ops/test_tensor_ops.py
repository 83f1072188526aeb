import pytest
import torch
from torch.testing import assert_close

from mmseg_hosvd.ops import (
    fold,
    gram_times,
    mode_dot,
    multi_mode_dot,
    tucker_to_tensor,
    unfold,
)


def test_unfold_fold_round_trip_every_mode():
    tensor = torch.randn(2, 3, 4, 5)
    for mode in range(4):
        matrix = unfold(tensor, mode)
        assert matrix.shape == (tensor.shape[mode], tensor.numel() //
                                tensor.shape[mode])
        assert_close(fold(matrix, mode, tensor.shape), tensor)


def test_unfold_rows_are_mode_fibres():
    tensor = torch.randn(2, 3, 4, 5)
    matrix = unfold(tensor, 2)
    assert_close(matrix[1], tensor[:, :, 1, :].reshape(-1))


def test_mode_dot_matches_einsum():
    tensor = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    matrix = torch.randn(7, 4, dtype=torch.float64)
    expected = torch.einsum('bchw,kh->bckw', tensor, matrix)
    assert_close(mode_dot(tensor, matrix, 2), expected)


def test_multi_mode_dot_is_order_independent_and_transposes():
    tensor = torch.randn(3, 4, 5, 6, dtype=torch.float64)
    mats = [torch.randn(s, 2, dtype=torch.float64) for s in tensor.shape]
    expected = torch.einsum('abcd,ai,bj,ck,dl->ijkl', tensor, *mats)
    assert_close(multi_mode_dot(tensor, mats, transpose=True), expected)
    sub = multi_mode_dot(tensor, [mats[3].t(), mats[1].t()], modes=[3, 1])
    assert_close(sub, torch.einsum('abcd,bj,dl->ajcl', tensor, mats[1],
                                   mats[3]))


def test_tucker_to_tensor_with_identity_factors_is_core():
    core = torch.randn(2, 3, 4, 5)
    eyes = [torch.eye(s) for s in core.shape]
    assert_close(tucker_to_tensor((core, eyes)), core)


def test_gram_times_on_strided_unfoldings():
    tensor = torch.randn(3, 7, 5, 4, dtype=torch.float64)
    for mode in range(4):
        unfolding = unfold(tensor, mode)
        # row-major, and column-major (a channels-last channel unfolding)
        for matrix in (unfolding, unfolding.t().contiguous().t()):
            for k in (1, 2, 7):
                block = torch.randn(matrix.shape[0], k, dtype=torch.float64)
                assert_close(gram_times(matrix, block),
                             unfolding @ unfolding.t() @ block)


@pytest.mark.parametrize('mode', range(4))
def test_mode_dot_of_a_channels_last_tensor(mode):
    tensor = randn(2, 3, 4, 5)
    last = tensor.contiguous(memory_format=torch.channels_last)
    matrix = randn(6, tensor.shape[mode])
    assert_close(mode_dot(last, matrix, mode), mode_dot(tensor, matrix, mode))
    assert_close(mode_dot(last, matrix.t(), mode, transpose=True),
                 mode_dot(tensor, matrix, mode))
    # neither contiguous nor a permutation of a contiguous tensor
    strided = tensor[:, :, ::2]
    matrix = randn(6, strided.shape[mode])
    assert_close(mode_dot(strided, matrix, mode),
                 mode_dot(strided.contiguous(), matrix, mode))


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float64)


def test_fold_and_mode_dot_take_negative_modes():
    tensor = randn(2, 3, 4)
    assert_close(fold(unfold(tensor, -1), -1, tensor.shape), tensor)
    matrix = randn(5, 4)
    assert_close(mode_dot(tensor, matrix, -1),
                 torch.einsum('abc,kc->abk', tensor, matrix))


def test_mode_dot_with_a_vector_removes_the_mode():
    tensor, vector = randn(2, 3, 4, 5), randn(4)
    assert_close(mode_dot(tensor, vector, 2),
                 torch.einsum('bchw,h->bcw', tensor, vector))
    last = randn(5)  # transpose leaves a vector as it is
    assert_close(mode_dot(tensor, last, 3, transpose=True),
                 torch.einsum('bchw,w->bch', tensor, last))
    assert mode_dot(vector, vector, 0).shape == ()


def test_mode_dot_transpose_multiplies_by_the_transpose():
    tensor, matrix = randn(2, 3, 4, 5), randn(3, 7)
    assert_close(mode_dot(tensor, matrix, 1, transpose=True),
                 torch.einsum('bchw,ck->bkhw', tensor, matrix))


def test_multi_mode_dot_modes_index_the_tensor_around_vectors():
    tensor = randn(3, 4, 5, 6)
    first, third, last = randn(3), randn(2, 5), randn(6)
    expected = torch.einsum('abcd,a,kc,d->bk', tensor, first, third, last)
    assert_close(
        multi_mode_dot(tensor, [third, last, first], modes=[2, 3, 0]),
        expected)


def test_multi_mode_dot_skips_by_position_and_keeps_one_modes_order():
    tensor = randn(3, 4, 5)
    mats = [randn(2, s) for s in tensor.shape]
    assert_close(multi_mode_dot(tensor, mats, skip=1),
                 torch.einsum('abc,ia,kc->ibk', tensor, mats[0], mats[2]))
    # two entries on mode 1: the matrix first, then the vector
    again = randn(7, 4)
    vector = randn(7)
    assert_close(
        multi_mode_dot(tensor, [again, vector], modes=[1, 1]),
        torch.einsum('abc,jb,j->ac', tensor, again, vector))


def test_tucker_to_tensor_takes_tensorlys_arguments():
    core = randn(2, 3, 4)
    factors = [randn(s, k) for s, k in zip((5, 6, 7), core.shape, strict=True)]
    full = torch.einsum('abc,ia,jb,kc->ijk', core, *factors)
    assert_close(tucker_to_tensor((core, factors)), full)
    assert_close(tucker_to_tensor((core, factors), skip_factor=2),
                 torch.einsum('abc,ia,jb->ijc', core, *factors[:2]))
    big = randn(5, 6, 7)
    assert_close(
        tucker_to_tensor((big, factors), transpose_factors=True),
        torch.einsum('ijk,ia,jb,kc->abc', big, *factors))
    assert_close(tucker_to_tensor((core, factors[1:]), modes=[1, 2]),
                 torch.einsum('abc,jb,kc->ajk', core, *factors[1:]))


def test_tucker_to_tensor_names_the_old_two_argument_form():
    core = randn(2, 3)
    factors = [randn(4, 2), randn(5, 3)]
    with pytest.raises(ValueError, match=r'one \(core, factors\) pair.*'
                       r'tucker_to_tensor\(\(core, factors\)\)'):
        tucker_to_tensor(core, factors)


@pytest.mark.parametrize('call, message', [
    (lambda t: unfold(t, 3), r'mode must be an int in \[-3, 2\].*got 3'),
    (lambda t: fold(t, 0, (2, 2)), r'has 24 elements.*\(2, 2\) has 4'),
    (lambda t: mode_dot(t, randn(5, 4), 1), r'mode 1 .* has size 3.*'
     r'multiplies size 4'),
    (lambda t: mode_dot(t, randn(3, 3, 3), 1),
     r'operand of shape \(3, 3, 3\)'),
    (lambda t: multi_mode_dot(t, [randn(2, 2)], skip=1),
     r'skip must be None or an int in \[0, 0\], got 1'),
    (lambda t: multi_mode_dot(t, [randn(2, 2)], modes=[0, 1]),
     r'got 1 matrices or vectors for modes \[0, 1\]'),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call(randn(2, 3, 4))
