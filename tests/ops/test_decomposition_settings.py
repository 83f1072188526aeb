"""DecompositionSettings: validation, and one object instead of flat args."""
import dataclasses

import pytest
import torch

from mmseg_hosvd.ops import (
    ConvGeometry,
    DecompositionSettings,
    hosvd,
    hosvd_conv2d,
    leading_vectors,
)
from mmseg_hosvd.ops.lean_activations import frozen_batch_norm

from .spectra import low_rank_wide_activation, matrix_with_spectrum

GEO = ConvGeometry.make(1, 1)


def test_defaults_eps_as_float_frozen_and_comparable():
    default = DecompositionSettings()
    assert (default.eps, default.solver, default.seed) == (0.8, 'auto', 0)
    one = DecompositionSettings(1)
    assert one.eps == 1.0 and isinstance(one.eps, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        default.eps = 0.9
    assert DecompositionSettings(0.9, 'eigh', 3) == DecompositionSettings(
        0.9, 'eigh', 3)
    assert len({DecompositionSettings(), DecompositionSettings(0.8)}) == 1


@pytest.mark.parametrize('kwargs,match', [
    (dict(eps=0.0), r'eps must be in \(0, 1\], got 0.0'),
    (dict(eps=1.5), r'eps must be in \(0, 1\], got 1.5'),
    (dict(eps='0.8'), "eps must be a number in \\(0, 1\\], got '0.8'"),
    (dict(solver='lobpcg'), r"solver must be one of \('auto', 'eigh', "
     r"'ritz'\), got 'lobpcg'"),
    (dict(seed=-1), 'seed must be an int >= 0, got -1'),
    (dict(seed=1.5), 'seed must be an int >= 0, got 1.5'),
    (dict(seed=True), 'seed must be an int >= 0, got True'),
])
def test_bad_values_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DecompositionSettings(**kwargs)


def conv_grads(x, weight, **kwargs):
    weight = weight.detach().clone().requires_grad_()
    out, stored = hosvd_conv2d(x, weight, None, GEO, **kwargs)
    (grad, ) = torch.autograd.grad(out, [weight], torch.ones_like(out))
    return out, grad, stored


@pytest.mark.parametrize('eps,solver', [(0.9, 'eigh'), (0.8, 'auto'),
                                        (0.95, 'ritz')])
def test_hosvd_conv2d_takes_the_settings_whole(eps, solver):
    x = low_rank_wide_activation(seed=1)
    weight = torch.randn(3, 320, 3, 3, dtype=torch.float64)
    flat = conv_grads(x, weight, eps=eps, solver=solver)
    whole = conv_grads(x, weight,
                       settings=DecompositionSettings(eps, solver))
    assert torch.equal(flat[0], whole[0])
    assert torch.equal(flat[1], whole[1])
    assert flat[2] == whole[2]


def test_leading_vectors_takes_settings_or_a_threshold():
    matrix = matrix_with_spectrum([0.9**i for i in range(300)], 300)
    settings = DecompositionSettings(0.8, 'ritz', 4)
    assert torch.equal(leading_vectors(matrix, settings),
                       leading_vectors(matrix, settings, 'ritz'))
    assert torch.equal(
        leading_vectors(matrix, DecompositionSettings(0.8, 'eigh')),
        leading_vectors(matrix, 0.8, 'eigh'))
    with pytest.raises(ValueError, match="solver='eigh' disagrees"):
        leading_vectors(matrix, settings, 'eigh')


def frozen_bn_call(x, **kwargs):
    weight = torch.ones(x.shape[1], dtype=x.dtype, requires_grad=True)
    stats = torch.zeros(x.shape[1], dtype=x.dtype)
    out, stored = frozen_batch_norm(x, weight, None, stats, stats + 1, 1e-5,
                                    **kwargs)
    (grad, ) = torch.autograd.grad(out, [weight], torch.ones_like(out))
    return grad, stored


def test_frozen_batch_norm_takes_the_settings_whole():
    x = low_rank_wide_activation(seed=2)
    flat = frozen_bn_call(x, compress_eps=0.7, solver='eigh')
    whole = frozen_bn_call(x, settings=DecompositionSettings(0.7, 'eigh'))
    assert torch.equal(flat[0], whole[0]) and flat[1] == whole[1]


def test_flat_arguments_that_disagree_with_settings_are_refused():
    x = torch.randn(2, 4, 5, 5)
    weight = torch.randn(3, 4, 3, 3, requires_grad=True)
    settings = DecompositionSettings(0.9, 'eigh', 2)
    refused = [
        (lambda: hosvd(x, eps=0.7, settings=settings), 'eps=0.7'),
        (lambda: hosvd(x, solver='ritz', settings=settings), "solver='ritz'"),
        (lambda: hosvd(x, seed=1, settings=settings), 'seed=1'),
        (lambda: hosvd_conv2d(x, weight, None, GEO, 0.7, settings=settings),
         'eps=0.7'),
        (lambda: frozen_bn_call(x, compress_eps=0.5, settings=settings),
         'eps=0.5'),
    ]
    for call, name in refused:
        with pytest.raises(ValueError, match=f'{name} disagrees with '
                           'settings'):
            call()
    with pytest.raises(ValueError, match='exactly one of settings and rank'):
        hosvd(x, rank=(1, 1, 1, 1), settings=settings)
    with pytest.raises(TypeError, match='must be a DecompositionSettings'):
        hosvd_conv2d(x, weight, None, GEO, settings={'eps': 0.9})
    agreeing = hosvd(x, eps=0.9, solver='eigh', seed=2, settings=settings)
    assert torch.equal(agreeing[0], hosvd(x, settings=settings)[0])
