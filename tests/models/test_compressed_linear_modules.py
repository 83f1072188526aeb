"""The registered nn.Linear subclasses: sharing, modes, registry, repr."""
import pytest
import torch
from mmcv.cnn.bricks.wrappers import Linear as MMCVLinear
from mmseg.registry import MODELS
from torch import nn
from torch.testing import assert_close

from mmseg_hosvd.models import (
    CompressedLinear,
    LinearHOSVD,
    LinearHOSVDSubspace,
    LinearQuantized,
    LinearSVD,
)

MODULES = [(LinearHOSVD, dict(eps=1.0)), (LinearSVD, dict(eps=1.0)),
           (LinearHOSVDSubspace, dict(eps=1.0)),
           (LinearQuantized, dict(bits=8))]


@pytest.mark.parametrize('cls,options', MODULES)
def test_from_linear_shares_parameters_and_state_dict(cls, options):
    linear = MMCVLinear(4, 6)
    linear.eval()
    new = cls.from_linear(linear, **options)
    assert isinstance(new, nn.Linear) and not new.training
    assert new.weight is linear.weight and new.bias is linear.bias
    assert list(new.state_dict()) == list(linear.state_dict())
    no_bias = cls.from_linear(nn.Linear(4, 6, bias=False), **options)
    assert no_bias.bias is None and no_bias.training


@pytest.mark.parametrize('cls,options', MODULES)
def test_eval_and_no_grad_are_plain_linear(cls, options):
    linear = nn.Linear(4, 6)
    new = cls.from_linear(linear, **options)
    x = torch.randn(2, 5, 4)
    new.eval()
    out = new(x)
    assert new.last_stored is None
    assert_close(out, linear(x))
    assert 'Compressed' not in type(out.grad_fn).__name__
    new.train()
    with torch.no_grad():
        new(x)
    assert new.last_stored is None
    linear.weight.requires_grad_(False)
    new(x)
    assert new.last_stored is None
    linear.weight.requires_grad_(True)
    out = new(x)
    assert new.last_stored is not None
    assert 'CompressedLinearFunction' in type(out.grad_fn).__name__


@pytest.mark.parametrize('cls,options', MODULES[:3])
@pytest.mark.parametrize('shape', [(2, 5, 4), (2, 3, 3, 4)], ids=str)
def test_training_matches_linear_at_full_rank(cls, options, shape):
    linear = nn.Linear(4, 6).double()
    new = cls.from_linear(linear, **options)
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    ref = linear(x)
    grad = torch.randn_like(ref)
    leaves = [x, linear.weight, linear.bias]
    want = torch.autograd.grad(ref, leaves, grad)
    got = torch.autograd.grad(new(x), leaves, grad)
    for g, w in zip(got, want, strict=True):
        assert_close(g, w)


def test_training_forward_records_what_it_stored():
    layer = LinearHOSVD(8, 8, eps=0.8)
    layer(torch.randn(4, 16, 8).relu())
    stored = layer.last_stored
    assert len(stored.ranks) == 3 and stored.numel > 0
    assert stored.input_numel == 4 * 16 * 8


def test_subspace_ranks_follow_the_input_order():
    layer = LinearHOSVDSubspace(4, 3)
    x = torch.randn(2, 6, 4)
    layer(x)
    assert layer.factor0 is None  # no ranks yet: HOSVD-eps
    layer.set_ranks((1, 2, 3))
    layer(x)
    assert layer.last_stored.ranks == (1, 2, 3)
    assert [tuple(f.shape) for f in layer.previous_factors()] == [(2, 1),
                                                                  (6, 2),
                                                                  (4, 3)]
    with pytest.raises(ValueError, match=r'ranks must be 2 or 3 or 4 ints '
                       r'>= 1 \(batch, tokens or height and width, channel\)'
                       r', got \(1, 2, 3, 4, 5\)'):
        layer.set_ranks((1, 2, 3, 4, 5))


def test_registry_builds_each_module():
    built = [
        MODELS.build(dict(type=name, in_features=3, out_features=4, **opts))
        for name, opts in (('LinearHOSVD', dict(eps=0.9)), ('LinearSVD', {}),
                           ('LinearHOSVDSubspace', dict(ranks=(1, 2, 3))),
                           ('LinearQuantized', dict(bits=4)))
    ]
    assert all(isinstance(m, CompressedLinear) for m in built)
    assert (built[0].eps, built[1].eps, built[2].ranks,
            built[3].bits) == (0.9, 0.8, (1, 2, 3), 4)


def test_extra_repr_names_the_setting():
    linear = nn.Linear(3, 4)
    assert "eps=0.85, solver='eigh'" in repr(
        LinearHOSVD.from_linear(linear, eps=0.85, solver='eigh'))
    assert 'eps=0.7' in repr(LinearSVD.from_linear(linear, eps=0.7))
    assert 'bits=2, group_size=64' in repr(
        LinearQuantized.from_linear(linear, bits=2, group_size=64))


def test_bad_settings_name_the_value():
    with pytest.raises(ValueError, match='got 1.5'):
        LinearHOSVD(3, 4, eps=1.5)
    with pytest.raises(ValueError, match='got 0'):
        LinearSVD(3, 4, eps=0)
    with pytest.raises(ValueError, match='got 3'):
        LinearQuantized(3, 4, bits=3)
    with pytest.raises(TypeError, match='expects an nn.Linear, got Conv2d'):
        LinearHOSVD.from_linear(nn.Conv2d(3, 4, 1))
    with pytest.raises(ValueError, match=r'got shape \(2, 1, 1, 1, 3\)'):
        LinearHOSVD(3, 4)(torch.randn(2, 1, 1, 1, 3))


def test_linear_warm_start_is_kept_and_can_be_turned_off(monkeypatch):
    import mmseg_hosvd.ops.solvers as solvers
    starts = []
    real = solvers.ritz_leading_block
    monkeypatch.setattr(
        solvers, 'ritz_leading_block',
        lambda matrix, eps, seed=0, start=None, **options: starts.append(
            start) or real(matrix, eps, seed, start, **options))
    torch.manual_seed(0)
    mix = torch.randn(3, 300)
    warm = LinearHOSVD(300, 8, eps=0.9)
    for _ in range(2):  # 300 channels of rank 3
        warm(torch.randn(4, 6, 3) @ mix).square().sum().backward()
    assert len(warm.warm_start) == 1  # the channel mode, a Ritz mode
    assert starts[0] is None  # the first step starts cold, the second
    assert starts[1] is not None and starts[1].shape[0] == 300  # warm
    cold = LinearHOSVD(300, 8, eps=0.9, warm_start=False)
    assert cold.warm_start is None and 'warm_start=False' in repr(cold)
    with pytest.raises(ValueError, match='warm_start must be True or False, '
                       'got 0'):
        LinearHOSVD(3, 4, warm_start=0)
