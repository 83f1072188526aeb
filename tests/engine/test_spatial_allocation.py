"""HOSVD's eps and spatial eps allocated together by gradient error,
through the hook and a real Runner: the pairs measured, what is set on
the layers, the bytes, that it never does worse than one eps per layer,
and that a resume keeps it."""
import pytest
import torch

from mmseg_hosvd.engine import CompressConvHook
from mmseg_hosvd.methods import get_method
from mmseg_hosvd.planning.allocation_session import GradientAllocationSession

from ..helpers import build_model
from .test_allocation_hook import ASPP, HEAD, logs, run

GRID = [0.5, 0.95]


def test_every_pair_of_the_two_grids_is_a_candidate():
    plan = CompressConvHook(num_layers=5, keep_batch=True, allocate=dict(
        budget_of=0.8, grid=GRID, spatial_grid=[0.9])).apply(
            build_model('deeplabv3'))
    session = GradientAllocationSession(get_method('hosvd'), plan)
    assert [tag for _, tag in session.grid()] == [
        f'eps={e:g},spatial_eps={s:g}' for e in (0.5, 0.8, 0.95)
        for s in (0.8, 0.9)
    ]
    for candidate, (value, _) in zip(session.candidates(), session.grid(),
                                     strict=True):
        assert candidate.options['eps'] == value['eps']
        assert candidate.options['spatial_eps'] == value['spatial_eps']
        assert candidate.options['keep_batch'] is True
    reference = session.budget_candidate()
    assert (reference.options['keep_batch'], reference.options['eps'],
            reference.options['spatial_eps']) == (False, 0.8, None)


@pytest.mark.parametrize('criterion', ['layers', 'whole'])
def test_pairs_never_do_worse_than_one_eps_per_layer(tiny_data, tmp_path,
                                                     criterion):
    """With the same values in both grids, the pairs hold every one-eps
    choice (both modes at one eps decompose as that eps does), so in the
    same bytes the allocation's error is at most one eps's."""
    _, one = run(tmp_path / 'one', tiny_data, max_iters=1,
                 allocate=dict(budget_of=0.8, grid=GRID,
                               criterion=criterion))
    runner, paired = run(tmp_path / 'paired', tiny_data, max_iters=1,
                         allocate=dict(budget_of=0.8, grid=GRID,
                                       spatial_grid=GRID,
                                       criterion=criterion))
    results = paired.plan.results
    assert results['allocation_budget_mb'] == pytest.approx(
        one.plan.results['allocation_budget_mb'], rel=1e-12)
    assert results['allocated_mb'] <= results['allocation_budget_mb']
    assert results['allocation_error'] <= (
        one.plan.results['allocation_error'] * (1 + 1e-9))
    allocated = results['allocated']
    assert list(allocated) == HEAD
    assert len({repr(allocated[name]) for name in ASPP}) == 1
    for name, value in allocated.items():
        assert set(value) == {'eps', 'spatial_eps'}
        assert value['eps'] in (0.5, 0.8, 0.95)
        assert value['spatial_eps'] in (0.5, 0.8, 0.95)
        decomposition = runner.model.get_submodule(name).decomposition
        assert (decomposition.eps, decomposition.spatial_eps) == (
            value['eps'], value['spatial_eps'])
        assert runner.model.get_submodule(name).eps == value['eps']
    assert 'allocation: eps and spatial_eps per layer by weight-gradient' \
        in logs(tmp_path / 'paired')[0]


def test_a_resume_keeps_the_pairs(tiny_data, tmp_path):
    options = dict(keep_batch=True, allocate=dict(
        budget_of=0.95, grid=GRID, spatial_grid=GRID, criterion='whole'))
    _, first = run(tmp_path, tiny_data, **options)
    meta = torch.load(str(tmp_path / 'iter_2.pth'),
                      weights_only=False)['meta']['finetune']
    assert meta['allocated'] == first.plan.results['allocated']
    assert get_method('hosvd').label(meta) == (
        'eps and spatial_eps by whole-gradient error in the bytes of eps '
        '0.95, grid 0.5/0.95, spatial_grid 0.5/0.95, batch mode kept')
    runner, second = run(tmp_path, tiny_data, max_iters=3, resume=True,
                         **options)
    assert runner.iter == 3
    assert second.session.settings == first.session.settings
    for name, value in first.session.settings.items():
        decomposition = runner.model.get_submodule(name).decomposition
        assert decomposition.keep_batch is True
        assert (decomposition.eps, decomposition.spatial_eps) == (
            value['eps'], value['spatial_eps'])
    resumed_log = logs(tmp_path)[-1]
    assert 'allocation: resumed eps and spatial_eps per layer' in resumed_log
    assert 'by weight-gradient error' not in resumed_log
