"""Fixed-rank subspace iteration: exact at full rank, converges to the top."""
import pytest
import torch
from torch.testing import assert_close

from mmseg_hosvd.ops import (
    ConvGeometry,
    allocate_ranks,
    gram_eigh,
    subspace_hosvd,
    subspace_hosvd_conv2d,
    tucker_numel,
    tucker_to_tensor,
    unfold,
)

from .conv_cases import CASES, case_id, make_conv, reference_grads


@pytest.mark.parametrize('case', CASES, ids=case_id)
def test_full_rank_gradients_equal_conv2d_after_several_steps(case):
    conv, x = make_conv(case)
    geo = ConvGeometry.of(conv)
    ranks = tuple(x.shape)
    previous = None
    for _ in range(3):  # first step from Gram, then subspace steps
        expected_out, grad_out, expected = reference_grads(conv, x)
        x2 = x.detach().clone().requires_grad_()
        out, stored, previous = subspace_hosvd_conv2d(
            x2, conv.weight, conv.bias, geo, ranks, previous)
        params = [conv.weight] + ([conv.bias] if conv.bias is not None
                                  else [])
        grads = torch.autograd.grad(out, [x2] + params, grad_out)
        assert_close(out, expected_out)
        for got, want in zip(grads, expected, strict=True):
            assert_close(got, want)
        assert stored.ranks == ranks


def principal_cosines(a, b):
    return torch.linalg.svdvals(a.t() @ b)


def test_reduced_rank_subspace_converges_to_top_eigenvectors():
    torch.manual_seed(0)
    # six components of decaying strength: clear gaps between eigenvalues
    parts = [torch.linalg.qr(torch.randn(s, 6, dtype=torch.float64))[0]
             for s in (8, 32, 12, 12)]
    core = torch.zeros(6, 6, 6, 6, dtype=torch.float64)
    for r in range(6):
        core[r, r, r, r] = 3.0**-r
    x = tucker_to_tensor((core, parts)) + 1e-4 * torch.randn(
        8, 32, 12, 12, dtype=torch.float64)
    ranks = (3, 4, 3, 3)
    # start from a random orthonormal basis, not from the answer
    previous = [torch.linalg.qr(torch.randn(n, k, dtype=torch.float64))[0]
                for n, k in zip(x.shape, ranks, strict=True)]
    for _ in range(12):
        _, previous = subspace_hosvd(x, ranks, previous)
    for mode, (factor, k) in enumerate(zip(previous, ranks, strict=True)):
        top = gram_eigh(unfold(x, mode))[1][:, :k]
        cosines = principal_cosines(top, factor)
        assert cosines.min() > 0.999, (mode, cosines)
        assert_close(factor.t() @ factor, torch.eye(k, dtype=x.dtype))


def test_first_step_and_shape_changes_start_from_gram():
    x = torch.randn(4, 6, 5, 5, dtype=torch.float64)
    core, factors = subspace_hosvd(x, (2, 3, 2, 2))
    for mode, factor in enumerate(factors):
        top = gram_eigh(unfold(x, mode))[1][:, :factor.shape[1]]
        assert principal_cosines(top, factor).min() > 1 - 1e-9
    smaller = torch.randn(3, 6, 5, 5, dtype=torch.float64)
    _, again = subspace_hosvd(smaller, (2, 3, 2, 2), factors)
    assert again[0].shape == (3, 2)


def test_budget_allocation_fits_and_prefers_energetic_modes():
    energies = {
        'a': [torch.tensor([10., 1., .1]),
              torch.tensor([100., 1., 1., 1.]),
              torch.tensor([5., 5.]),
              torch.tensor([1., 0.])],
        'b': [torch.tensor([1., 1., 1.]),
              torch.tensor([1., 1., 1., 1.]),
              torch.tensor([1., 1.]),
              torch.tensor([1., 1.])],
    }
    shapes = {'a': (3, 4, 2, 2), 'b': (3, 4, 2, 2)}
    budget = 60 * 4 / 2**20
    ranks = allocate_ranks(energies, shapes, budget)
    assert sum(tucker_numel(shapes[n], r) for n, r in ranks.items()) <= 60
    assert ranks['a'][3] == 1  # the second width component has no energy
    assert ranks['a'][2] == 2  # two equal components: both kept
    bigger = allocate_ranks(energies, shapes, 10.0)
    assert bigger['b'] == (3, 4, 2, 2)


def test_budget_below_rank_one_everywhere_names_the_minimum():
    energies = {'a': [torch.ones(3)] * 4}
    shapes = {'a': (3, 3, 3, 3)}
    minimum = tucker_numel((3, 3, 3, 3), (1, 1, 1, 1)) * 4 / 2**20
    with pytest.raises(ValueError,
                       match=f'below the minimum of {minimum:.4f} MB'):
        allocate_ranks(energies, shapes, minimum / 2)
