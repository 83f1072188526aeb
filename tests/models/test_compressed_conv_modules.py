"""The registered nn.Conv2d subclasses: sharing, modes, registry, repr."""
import pytest
import torch
from mmseg.registry import MODELS
from torch import nn
from torch.testing import assert_close

from mmseg_hosvd.models import (
    CompressedConv2d,
    Conv2dGradFilter,
    Conv2dHOSVD,
    Conv2dSVD,
)

MODULES = [(Conv2dHOSVD, dict(eps=1.0)), (Conv2dSVD, dict(eps=1.0)),
           (Conv2dGradFilter, dict(radius=2))]


@pytest.mark.parametrize('cls,options', MODULES)
def test_from_conv_shares_parameters_and_state_dict(cls, options):
    conv = nn.Conv2d(4, 6, 3, padding=1)
    new = cls.from_conv(conv, **options)
    assert isinstance(new, nn.Conv2d)
    assert new.weight is conv.weight and new.bias is conv.bias
    assert list(new.state_dict()) == list(conv.state_dict())
    no_bias = cls.from_conv(nn.Conv2d(4, 6, 3, bias=False), **options)
    assert no_bias.bias is None


@pytest.mark.parametrize('cls,options', MODULES)
def test_eval_and_no_grad_are_plain_convolutions(cls, options):
    conv = nn.Conv2d(4, 6, 3, padding=1)
    new = cls.from_conv(conv, **options)
    x = torch.randn(2, 4, 8, 8)
    new.eval()
    out = new(x)
    assert new.last_stored is None
    assert_close(out, conv(x))
    assert 'Convolution' in type(out.grad_fn).__name__
    new.train()
    with torch.no_grad():
        new(x)
    assert new.last_stored is None
    new(x)
    assert new.last_stored is not None


@pytest.mark.parametrize('cls,options', MODULES[:2])
def test_training_matches_conv_at_full_rank(cls, options):
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2,
                     padding_mode='reflect').double()
    new = cls.from_conv(conv, **options)
    x = torch.randn(2, 4, 9, 8, dtype=torch.float64, requires_grad=True)
    ref = conv(x)
    grad = torch.randn_like(ref)
    want = torch.autograd.grad(ref, [x, conv.weight, conv.bias], grad)
    got = torch.autograd.grad(new(x), [x, conv.weight, conv.bias], grad)
    for g, w in zip(got, want, strict=True):
        assert_close(g, w)


def test_training_forward_records_what_it_stored():
    conv = Conv2dHOSVD(8, 8, 3, padding=1, eps=0.8)
    conv(torch.randn(4, 8, 10, 10).relu())
    stored = conv.last_stored
    assert len(stored.ranks) == 4 and stored.numel > 0
    assert stored.bytes == 4 * stored.numel
    assert stored.input_numel == 4 * 8 * 10 * 10


def test_registry_builds_each_module():
    hosvd = MODELS.build(
        dict(type='Conv2dHOSVD', in_channels=3, out_channels=4,
             kernel_size=3, eps=0.9))
    svd = MODELS.build(
        dict(type='Conv2dSVD', in_channels=3, out_channels=4, kernel_size=1))
    gf = MODELS.build(
        dict(type='Conv2dGradFilter', in_channels=3, out_channels=4,
             kernel_size=3, radius=4))
    assert (hosvd.eps, svd.eps, gf.radius) == (0.9, 0.8, 4)
    assert all(isinstance(m, CompressedConv2d) for m in (hosvd, svd, gf))


def test_extra_repr_names_the_setting():
    conv = nn.Conv2d(3, 4, 3)
    assert 'eps=0.85' in repr(Conv2dHOSVD.from_conv(conv, eps=0.85))
    assert 'eps=0.7' in repr(Conv2dSVD.from_conv(conv, eps=0.7))
    assert 'radius=3' in repr(Conv2dGradFilter.from_conv(conv, radius=3))


def test_bad_settings_name_the_value():
    with pytest.raises(ValueError, match='got 1.5'):
        Conv2dHOSVD(3, 4, 3, eps=1.5)
    with pytest.raises(ValueError, match='got 0'):
        Conv2dGradFilter(3, 4, 3, radius=0)
    with pytest.raises(TypeError, match='expects an nn.Conv2d, got Linear'):
        Conv2dHOSVD.from_conv(nn.Linear(3, 4))
    with pytest.raises(ValueError, match="got 'svd'"):
        Conv2dHOSVD(3, 4, 3, solver='svd')


def test_solver_choice_reaches_the_decomposition():
    """'auto' and 'eigh' give the same gradients on a low-rank wide input,
    and 'eigh' is the paper's exact rank."""
    torch.manual_seed(0)
    basis = torch.randn(4, 300, 1, 1)
    x = (torch.randn(4, 4, 6, 6).unsqueeze(2) * basis.view(1, 4, 300, 1, 1)
         ).sum(1)
    grads, ranks = {}, {}
    for solver in ('auto', 'eigh'):
        torch.manual_seed(1)
        conv = Conv2dHOSVD(300, 8, 3, padding=1, eps=0.95, solver=solver)
        assert f"solver='{solver}'" in repr(conv)
        conv(x).square().sum().backward()
        grads[solver] = conv.weight.grad
        ranks[solver] = conv.last_stored.ranks
    assert ranks['auto'] == ranks['eigh']
    assert_close(grads['auto'], grads['eigh'], rtol=1e-4, atol=1e-3)


def _low_rank_wide_input():
    torch.manual_seed(0)
    basis = torch.randn(4, 300, 1, 1)
    return (torch.randn(4, 4, 6, 6).unsqueeze(2) *
            basis.view(1, 4, 300, 1, 1)).sum(1)


def test_warm_start_is_on_by_default_and_kept_only_in_training():
    x = _low_rank_wide_input()
    conv = Conv2dHOSVD(300, 8, 3, padding=1, eps=0.95)
    assert len(conv.warm_start) == 0 and 'warm_start' not in repr(conv)
    conv.eval()
    conv(x)
    assert len(conv.warm_start) == 0
    conv.train()
    conv(x).square().sum().backward()
    assert len(conv.warm_start) == 1  # the 300 channels, a Ritz mode
    assert list(conv.state_dict()) == ['weight', 'bias']
    conv.double()  # the kept blocks do not follow: they are dropped
    assert len(conv.warm_start) == 0


def test_without_warm_start_each_step_depends_on_its_input_only():
    x = _low_rank_wide_input()
    conv = Conv2dHOSVD(300, 8, 3, padding=1, eps=0.95, warm_start=False)
    assert conv.warm_start is None and 'warm_start=False' in repr(conv)
    grads = []
    for _ in range(2):
        conv.weight.grad = None
        conv(x).square().sum().backward()
        grads.append(conv.weight.grad)
    assert torch.equal(grads[0], grads[1])
    with pytest.raises(ValueError, match="warm_start must be True or False, "
                       "got 'no'"):
        Conv2dHOSVD(3, 4, 3, warm_start='no')
