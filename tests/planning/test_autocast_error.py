"""The weight-gradient error of autocast, against a direct computation."""
import contextlib

import pytest
import torch
from torch import nn

from mmseg_hosvd.planning.autocast_error import autocast_gradient_errors


def setting():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8),
                          nn.ReLU(), nn.Dropout(0.3),
                          nn.Conv2d(8, 4, 1)).train()
    x = torch.randn(2, 3, 8, 8)

    def loss():
        return model(x).square().mean()

    layers = {'0': model[0], '4': model[4]}
    return model, layers, loss


def bfloat16():
    return torch.autocast('cpu', dtype=torch.bfloat16)


def direct(model, loss, context, rng):
    """The two layers' weight gradients of one plain backward from the
    random state ``rng`` (the dropout mask the measurement draws; the norm
    normalises by the batch's statistics in training mode)."""
    torch.set_rng_state(rng)
    model.zero_grad(set_to_none=True)
    with context():
        value = loss()
    value.backward()
    return [model[i].weight.grad.clone() for i in (0, 4)]


def test_the_errors_are_the_relative_distance_of_the_two_gradients():
    model, layers, loss = setting()
    rng = torch.get_rng_state()
    measured = autocast_gradient_errors(model, layers, loss, bfloat16)
    errors = measured.layers
    exact = direct(model, loss, contextlib.nullcontext, rng)
    mixed = direct(model, loss, bfloat16, rng)
    for name, want, got in zip(('0', '4'), exact, mixed, strict=True):
        assert errors[name] == pytest.approx(
            float((got - want).norm() / want.norm()), rel=1e-6)
        assert 0 < errors[name] < 0.05  # bfloat16 keeps ~3 digits
    joined = [torch.cat([g.flatten() for g in grads])
              for grads in (exact, mixed)]
    assert measured.whole == pytest.approx(
        float((joined[1] - joined[0]).norm() / joined[0].norm()), rel=1e-5)


def test_without_autocast_the_error_is_zero():
    """The two backwards start from the same state: the same dropout mask,
    the same norm statistics."""
    model, layers, loss = setting()
    measured = autocast_gradient_errors(model, layers, loss,
                                        contextlib.nullcontext)
    assert measured.layers == {'0': 0.0, '4': 0.0}
    assert measured.whole == 0.0


def test_the_model_is_left_as_it_was():
    model, layers, loss = setting()
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    rng = torch.get_rng_state()
    autocast_gradient_errors(model, layers, loss, bfloat16)
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(p.grad is None for p in model.parameters())
    for name, value in model.named_buffers():
        assert torch.equal(value, buffers[name]), name


def test_a_layer_without_a_gradient_is_named():
    model, layers, loss = setting()
    model[0].weight.requires_grad_(False)
    with pytest.raises(ValueError, match="layer '0' got no weight gradient"):
        autocast_gradient_errors(model, layers, loss, bfloat16)
