"""The weight-gradient error of compressed settings, against a direct
computation: the exact gradient of the input's reconstruction."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mmseg.registry import MODELS
from torch import nn

from mmseg_hosvd.engine import CompressConvHook
from mmseg_hosvd.ops import hosvd
from mmseg_hosvd.ops.tensor_ops import multi_mode_dot
from mmseg_hosvd.planning import (
    Candidate,
    LayerGradients,
    candidate_error,
    capture_layer_gradients,
    gradient_errors,
    merge_captures,
    relative_error,
    whole_relative_error,
)

from ..helpers import model_config
from ..ops.conv_cases import CASES, case_id, make_conv
from ..ops.spectra import low_rank_wide_activation


def captured(layer, x):
    """A layer's record for input ``x`` and a random output gradient."""
    with torch.no_grad():
        out = layer(x)
    return LayerGradients('layer', layer, [x.detach()],
                          [torch.randn_like(out)])


def reference_error(layer, x, grad_output, eps):
    """The error computed directly: dW of the exact input against dW of
    its HOSVD reconstruction, both through plain autograd."""
    core, factors = hosvd(x, eps=eps, solver='eigh')
    rebuilt = multi_mode_dot(core, factors, modes=list(range(x.dim())))
    grads = [
        torch.autograd.grad(layer(inputs), layer.weight, grad_output)[0]
        for inputs in (x, rebuilt)
    ]
    return float((grads[0] - grads[1]).norm() / grads[0].norm())


@pytest.mark.parametrize('eps', [0.5, 0.8, 0.95])
@pytest.mark.parametrize('case', CASES, ids=case_id)
def test_hosvd_error_of_a_conv_is_that_of_its_reconstruction(case, eps):
    conv, x = make_conv(case)
    record = captured(conv, x)
    got = candidate_error(record, Candidate('hosvd', dict(eps=eps,
                                                          solver='eigh')))
    want = reference_error(conv, record.inputs[0], record.grad_outputs[0],
                           eps)
    assert got.error == pytest.approx(want, rel=1e-6, abs=1e-9)
    assert got.tag == f'hosvd-eps{eps:g}'
    assert got.stored_bytes > 0
    exact = torch.autograd.grad(conv(record.inputs[0]), conv.weight,
                                record.grad_outputs[0])[0]
    assert got.gradient_norm == pytest.approx(float(exact.norm()),
                                              rel=1e-9)


@pytest.mark.parametrize('case', CASES, ids=case_id)
def test_full_rank_is_exact(case):
    conv, x = make_conv(case)
    for candidate in (Candidate('hosvd', dict(eps=1.0)),
                      Candidate('svd', dict(eps=1.0))):
        assert candidate_error(captured(conv, x),
                               candidate).error < 1e-9, candidate


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3),
       st.integers(0, 2), st.integers(1, 2), st.sampled_from([1, 2]),
       st.booleans(), st.floats(0.3, 0.99))
def test_random_geometries_match_the_reconstruction(kernel, stride,
                                                    dilation, padding, batch,
                                                    groups, bias, eps):
    conv = nn.Conv2d(2 * groups, 3 * groups, kernel, stride, padding,
                     dilation, groups, bias).double()
    x = torch.randn(batch, 2 * groups, 9, 8, dtype=torch.float64)
    record = captured(conv, x)
    got = candidate_error(record, Candidate('hosvd', dict(eps=eps,
                                                          solver='eigh')))
    want = reference_error(conv, x, record.grad_outputs[0], eps)
    assert got.error == pytest.approx(want, rel=1e-6, abs=1e-9)


def test_linear_tokens_match_the_reconstruction():
    linear = nn.Linear(12, 7).double()
    x = torch.randn(2, 30, 12, dtype=torch.float64)
    record = captured(linear, x)
    for eps in (0.5, 0.9):
        got = candidate_error(record, Candidate('hosvd', dict(
            eps=eps, solver='eigh')))
        want = reference_error(linear, x, record.grad_outputs[0], eps)
        assert got.error == pytest.approx(want, rel=1e-6)


def test_fewer_bits_err_more_and_store_less():
    conv, x = make_conv(CASES[0], dtype=torch.float32)
    record = captured(conv, x.detach())
    eight, two = (candidate_error(record, Candidate('quantized',
                                                    dict(bits=bits)))
                  for bits in (8, 2))
    assert 0 < eight.error < 0.05 < two.error
    assert two.stored_bytes < eight.stored_bytes


def test_errors_average_over_batches():
    conv, x = make_conv(CASES[1])
    first, second = captured(conv, x), captured(conv, x * 3 + 1)
    both = merge_captures({'layer': first}, {'layer': second})['layer']
    candidate = Candidate('hosvd', dict(eps=0.6, solver='eigh'))
    each = [candidate_error(r, candidate) for r in (first, second)]
    mean = candidate_error(both, candidate)
    assert mean.error == pytest.approx(sum(e.error for e in each) / 2)
    assert mean.stored_bytes == pytest.approx(
        sum(e.stored_bytes for e in each) / 2)
    assert mean.gradient_norm == pytest.approx(
        sum(e.gradient_norm for e in each) / 2)


def test_relative_error_of_a_zero_gradient_is_none():
    zero = torch.zeros(3, 3)
    assert relative_error(zero, torch.ones(3, 3)) is None
    assert relative_error(torch.ones(3, 3), zero) == pytest.approx(1.0)


def test_the_whole_gradient_s_error_is_that_of_the_layers_joined():
    """Two layers of different sizes: the error of their weight gradients
    taken as one vector, against the two reconstructions' gradients
    concatenated; a layer counts by its gradient's size, not alike."""
    differences, exacts, parts = [], [], []
    for case, scale, eps in ((CASES[0], 1.0, 0.4), (CASES[3], 50.0, 0.95)):
        conv, x = make_conv(case)
        record = captured(conv, x)
        record.grad_outputs[0] *= scale
        got = candidate_error(record, Candidate('hosvd', dict(
            eps=eps, solver='eigh')))
        parts.append((got.error, got.gradient_norm))
        x = record.inputs[0]
        core, factors = hosvd(x, eps=eps, solver='eigh')
        rebuilt = multi_mode_dot(core, factors, modes=list(range(x.dim())))
        exact, approximate = (torch.autograd.grad(
            conv(inputs), conv.weight, record.grad_outputs[0])[0].flatten()
                              for inputs in (x, rebuilt))
        differences.append(exact - approximate)
        exacts.append(exact)
    want = float(torch.cat(differences).norm() / torch.cat(exacts).norm())
    assert whole_relative_error(parts) == pytest.approx(want, rel=1e-6)
    assert whole_relative_error(parts) != pytest.approx(
        sum(e for e, _ in parts) / 2, rel=1e-2)
    assert whole_relative_error([(0.5, 0.0)]) is None
    assert whole_relative_error([]) is None


def test_a_grid_measures_what_each_candidate_measures_alone(monkeypatch):
    """An eps grid paired with a spatial eps grid on a layer whose channel
    mode takes the Ritz solver: every error, byte count and norm is that of
    the candidate measured on its own, and the channel mode is solved once
    per eps and batch, not once per pair."""
    import mmseg_hosvd.ops.solvers as solvers
    calls = []
    real = solvers.ritz_leading_block

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(solvers, 'ritz_leading_block', counting)
    torch.manual_seed(0)
    conv = nn.Conv2d(300, 8, 3, padding=1)
    batches = [captured(conv, low_rank_wide_activation(300, seed=seed)
                        .float()) for seed in (0, 1)]
    record = merge_captures(*({'layer': b} for b in batches))
    candidates = [Candidate('hosvd', dict(eps=eps, spatial_eps=spatial,
                                          keep_batch=True),
                            f'{eps},{spatial}')
                  for eps in (0.6, 0.8) for spatial in (0.7, 0.9, 0.95)]
    alone = [candidate_error(record['layer'], c) for c in candidates]
    assert len(calls) == 2 * len(candidates)
    calls.clear()
    assert gradient_errors(record, candidates) == alone
    # the second batch of each candidate starts warm: not shared
    assert len(calls) == 2 + len(candidates)
    assert len({e.error for e in alone}) == len(candidates)


def test_bad_candidates_and_layers_are_named():
    conv, x = make_conv(CASES[0])
    record = captured(conv, x)
    with pytest.raises(ValueError, match="method 'vanilla' does not "
                       'compress'):
        candidate_error(record, Candidate('vanilla'))
    with pytest.raises(ValueError, match="unknown method 'hosdv'"):
        candidate_error(record, Candidate('hosdv'))
    with pytest.raises(ValueError, match='eps'):
        candidate_error(record, Candidate('hosvd', dict(eps=1.5)))
    record.grad_outputs = [torch.zeros_like(record.grad_outputs[0])]
    with pytest.raises(ValueError, match="layer 'layer' has a zero weight "
                       'gradient'):
        candidate_error(record, Candidate('hosvd', dict(eps=0.8)))


@pytest.fixture
def deeplabv3():
    """The protocol's DeepLabV3 (narrow head), set up to fine-tune its 5
    head layers (which mmseg's zero-initialised residual norms do not
    cut off from the gradient)."""
    torch.manual_seed(0)
    cfg = model_config('deeplabv3')
    cfg.model.decode_head.channels = 16
    model = MODELS.build(cfg.model)
    plan = CompressConvHook(method='vanilla', num_layers=5).apply(model)
    return model.train(), plan['compressed']


def segmentation_loss(model, batch=2, size=32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, size, size, generator=gen)
    labels = torch.randint(0, 8, (batch, size, size), generator=gen)
    logits = model(images, mode='tensor')
    logits = nn.functional.interpolate(logits, size=(size, size),
                                       mode='bilinear')
    return nn.functional.cross_entropy(logits, labels)


def test_capture_gives_what_the_model_backward_used(deeplabv3):
    model, names = deeplabv3
    model.zero_grad()
    records = capture_layer_gradients(model, names,
                                      lambda: segmentation_loss(model))
    assert list(records) == list(names)
    for name, record in records.items():
        layer = record.layer
        assert layer is model.get_submodule(name)
        x, grad_output = record.inputs[0], record.grad_outputs[0]
        exact = torch.nn.grad.conv2d_weight(
            x, layer.weight.shape, grad_output, layer.stride, layer.padding,
            layer.dilation, layer.groups)
        torch.testing.assert_close(exact, layer.weight.grad, rtol=1e-4,
                                   atol=1e-6)
    errors = gradient_errors(records, [
        Candidate('hosvd', dict(eps=eps)) for eps in (0.5, 1.0)])
    assert [(e.layer, e.tag) for e in errors] == [
        (name, tag) for name in names
        for tag in ('hosvd-eps0.5', 'hosvd-eps1')]
    for low, full in zip(errors[::2], errors[1::2], strict=True):
        assert full.error < 1e-4 < low.error, (low, full)
        assert full.stored_bytes > low.stored_bytes


def test_capture_names_what_it_cannot_measure(deeplabv3):
    model, names = deeplabv3
    loss = lambda: segmentation_loss(model)  # noqa: E731
    with pytest.raises(ValueError, match="model has no layer 'decode_hed'"):
        capture_layer_gradients(model, ['decode_hed'], loss)
    with pytest.raises(ValueError, match="layer 'decode_head.aspp_modules' "
                       'is a ASPPModule; the gradient error is measured for '
                       'Conv2d and Linear'):
        capture_layer_gradients(model, ['decode_head.aspp_modules'], loss)
    frozen = 'backbone.stem.0'
    with pytest.raises(ValueError, match=f"did not reach layer '{frozen}'"):
        capture_layer_gradients(model, [frozen], loss)
