"""A measurement inside ``training_untouched`` leaves no trace on the
model's training: gradients, buffers, random state and warm starts."""
import torch
from torch import nn

from mmseg_hosvd.models import Conv2dHOSVD
from mmseg_hosvd.utils.untouched_training import training_untouched


def low_rank_batch():
    """Channels of rank 4, which the randomized solver solves (and so
    keeps a warm start for)."""
    return torch.einsum('bkhw,ck->bchw', torch.randn(2, 4, 16, 16),
                        torch.randn(256, 4))


def model_with_state():
    torch.manual_seed(0)
    model = nn.Sequential(
        Conv2dHOSVD(256, 4, 3, padding=1, eps=0.8, solver='ritz'),
        nn.BatchNorm2d(4), nn.Dropout(0.5), nn.Conv2d(4, 2, 1)).train()
    model(low_rank_batch()).sum().backward()  # warm start, grads
    assert len(model[0].warm_start) > 0
    return model


def snapshot(model):
    return dict(
        grads={n: p.grad.clone() for n, p in model.named_parameters()},
        buffers={n: b.clone() for n, b in model.named_buffers()},
        rng=torch.get_rng_state(),
        warm=model[0].warm_start.snapshot())


def assert_same(first, second):
    for key in ('grads', 'buffers'):
        assert first[key].keys() == second[key].keys()
        for name, value in first[key].items():
            torch.testing.assert_close(second[key][name], value, rtol=0,
                                       atol=0, msg=f'{key} {name}')
    assert torch.equal(first['rng'], second['rng'])
    torch.testing.assert_close(second['warm'], first['warm'], rtol=0, atol=0)


def measure(model):
    loss = model(low_rank_batch()).square().sum()
    loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()}


def test_a_measurement_leaves_no_trace():
    model = model_with_state()
    before = snapshot(model)
    with training_untouched(model):
        measured = measure(model)
        model[1].running_mean = torch.full((4, ), 7.)  # a replaced buffer
    assert_same(before, snapshot(model))
    assert model[1].running_mean is not None
    # the measurement's backward started from zero gradients
    fresh = model_with_state()
    fresh.zero_grad(set_to_none=True)
    torch.set_rng_state(before['rng'])
    for name, grad in measure(fresh).items():
        torch.testing.assert_close(measured[name], grad, msg=name)


def test_without_it_the_same_measurement_leaves_traces():
    model = model_with_state()
    before = snapshot(model)
    measure(model)
    after = snapshot(model)
    assert not torch.equal(after['rng'], before['rng'])
    assert not torch.equal(after['buffers']['1.running_mean'],
                           before['buffers']['1.running_mean'])
    assert not torch.equal(after['grads']['3.weight'],
                           before['grads']['3.weight'])
    assert any(not torch.equal(after['warm'][mode], vectors)
               for mode, vectors in before['warm'].items())


def test_the_state_is_put_back_when_the_measurement_fails():
    model = model_with_state()
    before = snapshot(model)
    try:
        with training_untouched(model):
            measure(model)
            raise RuntimeError('measurement failed')
    except RuntimeError:
        pass
    assert_same(before, snapshot(model))
