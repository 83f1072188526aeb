"""The tensor algebra called as TensorLy documents it returns TensorLy's."""
import numpy as np
import pytest
import tensorly as tl
import torch
from tensorly import tenalg
from torch.testing import assert_close

from mmseg_hosvd.ops import (
    fold,
    mode_dot,
    multi_mode_dot,
    tucker_to_tensor,
    unfold,
)

rng = np.random.default_rng(0)


def array(*shape, complex_=False):
    values = rng.standard_normal(shape)
    if complex_:
        values = values + 1j * rng.standard_normal(shape)
    return values


def agree(ours, theirs):
    assert_close(ours, torch.from_numpy(np.asarray(theirs)))


def torched(values):
    if isinstance(values, (list, tuple)):
        return [torch.from_numpy(v) for v in values]
    return torch.from_numpy(values)


@pytest.mark.parametrize('mode', [0, 1, 2, 3, -1])
def test_unfold_and_fold(mode):
    tensor = array(2, 3, 4, 5)
    agree(unfold(torched(tensor), mode), tl.unfold(tensor, mode))
    matrix = tl.unfold(tensor, mode)
    agree(fold(torched(matrix), mode, tensor.shape),
          tl.fold(matrix, mode, tensor.shape))


@pytest.mark.parametrize('operand, mode, transpose', [
    ((6, 4), 2, False), ((4, 6), 2, True), ((4, ), 2, False),
    ((4, ), 2, True), ((5, ), -1, False), ((7, 2), 0, False),
])
@pytest.mark.parametrize('complex_', [False, True])
def test_mode_dot(operand, mode, transpose, complex_):
    tensor = array(2, 3, 4, 5, complex_=complex_)
    other = array(*operand, complex_=complex_)
    agree(mode_dot(torched(tensor), torched(other), mode, transpose),
          tenalg.mode_dot(tensor, other, mode, transpose))


CASES = {
    'matrices': ([(7, 3), (2, 4), (5, 5), (1, 6)], None, None),
    'modes, unsorted': ([(2, 6), (3, 4)], [3, 1], None),
    'vectors and matrices': ([(5, ), (2, 3), (6, )], [2, 0, 3], None),
    'skip': ([(7, 3), (2, 4), (5, 5), (1, 6)], None, 2),
    'skip, unsorted modes': ([(2, 6), (8, 3), (4, )], [3, 0, 1], 0),
    'one mode twice': ([(2, 5), (2, ), (3, 4)], [2, 2, 1], None),
}


@pytest.mark.parametrize('case', CASES)
@pytest.mark.parametrize('transpose', [False, True])
@pytest.mark.parametrize('complex_', [False, True])
def test_multi_mode_dot(case, transpose, complex_):
    shapes, modes, skip = CASES[case]
    if transpose:
        shapes = [s[::-1] for s in shapes]
    tensor = array(3, 4, 5, 6, complex_=complex_)
    operands = [array(*s, complex_=complex_) for s in shapes]
    agree(
        multi_mode_dot(torched(tensor), torched(operands), modes, skip,
                       transpose),
        tenalg.multi_mode_dot(tensor, operands, modes, skip, transpose))


@pytest.mark.parametrize('options', [
    {}, dict(skip_factor=1), dict(transpose_factors=True),
    dict(skip_factor=0, transpose_factors=True)
])
def test_tucker_to_tensor(options):
    core = array(2, 3, 4)
    factors = [array(5, 2), array(6, 3), array(7, 4)]
    if options.get('transpose_factors'):
        core = array(5, 6, 7)
    expected = tl.tucker_to_tensor((core, factors), **options)
    agree(tucker_to_tensor((torched(core), torched(factors)), **options),
          expected)


def test_tucker_to_tensor_takes_a_tucker_tensor():
    core, factors = array(2, 3, 4), [array(5, 2), array(6, 3), array(7, 4)]
    tucker = tl.tucker_tensor.TuckerTensor((core, factors))
    agree(tucker_to_tensor(
        tl.tucker_tensor.TuckerTensor((torched(core), torched(factors)))),
          tl.tucker_to_tensor(tucker))


def test_tucker_to_tensor_modes():
    core, factors = array(2, 3, 4), [array(6, 3), array(7, 4)]
    agree(tucker_to_tensor((torched(core), torched(factors)), modes=[1, 2]),
          tl.tucker_to_tensor((core, factors), modes=[1, 2]))
