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
    assert_close(tucker_to_tensor(core, eyes), core)


def test_gram_times_on_strided_unfoldings():
    tensor = torch.randn(3, 7, 5, 4, dtype=torch.float64)
    for mode in range(4):
        matrix = unfold(tensor, mode)
        for k in (1, 2, 7):
            block = torch.randn(matrix.shape[0], k, dtype=torch.float64)
            assert_close(gram_times(matrix, block),
                         matrix @ matrix.t() @ block)
