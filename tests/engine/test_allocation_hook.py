"""Allocation by gradient error through the hook and a real Runner: what
it chooses, that it leaves training as it was, and that a resume keeps
it."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner

from mmseg_hosvd.engine import CompressConvHook
from mmseg_hosvd.methods import get_method
from mmseg_hosvd.planning.allocation_session import (
    ALLOCATED_KEY,
    GradientAllocationSession,
)

from ..helpers import tiny_runner_config

ASPP = [f'decode_head.aspp_modules.{i}.conv' for i in range(4)]
HEAD = ['decode_head.bottleneck.conv'] + ASPP


def run(tmp_path, tiny_data, max_iters=2, resume=False, method='hosvd',
        **options):
    hooks = [
        dict(type='CompressConvHook', method=method, num_layers=5,
             **options),
        dict(type='ActivationMemoryHook')
    ]
    cfg = tiny_runner_config('deeplabv3', str(tmp_path), tiny_data, hooks,
                             max_iters=max_iters)
    cfg.resume = resume
    cfg.randomness = dict(seed=0)
    runner = Runner.from_cfg(cfg)
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, CompressConvHook))
    return runner, hook


def logs(tmp_path):
    return [open(f).read() for f in sorted(
        glob.glob(osp.join(str(tmp_path), '*', '*.log')))]


def test_the_allocation_fits_the_bytes_of_the_uniform_setting(
        tiny_data, tmp_path):
    runner, hook = run(tmp_path, tiny_data,
                       allocate=dict(budget_of=0.8, grid=[0.5, 0.95]))
    allocated = hook.plan.results['allocated']
    assert list(allocated) == HEAD
    assert set(allocated.values()) <= {0.5, 0.8, 0.95}
    assert len({allocated[name] for name in ASPP}) == 1
    assert (hook.plan.results['allocated_mb'] <=
            hook.plan.results['allocation_budget_mb'])
    assert 0 < hook.plan.results['allocation_error'] < len(HEAD)
    assert hook.plan.results['allocation_relative_error'] == pytest.approx(
        hook.plan.results['allocation_error'], rel=1e-12)
    for name, eps in allocated.items():
        layer = runner.model.get_submodule(name)
        assert layer.eps == eps == layer.decomposition.eps
    assert 'allocation: eps per layer by weight-gradient error' in logs(
        tmp_path)[0]
    meta = torch.load(osp.join(str(tmp_path), 'iter_2.pth'),
                      weights_only=False)['meta']['finetune']
    assert meta['allocated'] == allocated
    assert runner.message_hub.get_info(ALLOCATED_KEY) == allocated


def test_a_budget_for_every_layer_buys_the_exact_setting(tiny_data,
                                                          tmp_path):
    _, hook = run(tmp_path, tiny_data, solver='eigh',
                  allocate=dict(budget_mb=1000, grid=[0.5, 1.0]))
    assert hook.plan.results['allocated'] == {name: 1.0 for name in HEAD}
    assert hook.plan.results['allocation_error'] == pytest.approx(0,
                                                                  abs=1e-4)
    _, hook = run(tmp_path / 'bits', tiny_data, method='quantized',
                  allocate=dict(budget_mb=1000))
    assert hook.plan.results['allocated'] == {name: 8 for name in HEAD}


def test_a_budget_below_every_setting_names_the_least(tiny_data, tmp_path):
    with pytest.raises(ValueError, match='is below the smallest total the '
                       'candidates store'):
        run(tmp_path, tiny_data, allocate=dict(budget_mb=1e-6))


@pytest.mark.parametrize('solver,norm_eval', [('eigh', True),
                                               ('ritz', True),
                                               ('eigh', False)])
def test_the_measurement_leaves_training_as_it_was(tiny_data, tmp_path,
                                                   solver, norm_eval):
    """One grid value: the allocation can only choose it, and the weights
    and buffers after training equal those of that value set for every
    layer (with the randomized solver too, whose warm start the
    measurement's extra forward must not move, and with the norms in
    training mode, whose running statistics it must not update)."""
    plain, _ = run(tmp_path / 'plain', tiny_data, max_iters=3, eps=0.8,
                   solver=solver, norm_eval=norm_eval)
    allocated, hook = run(tmp_path / 'alloc', tiny_data, max_iters=3,
                          solver=solver, norm_eval=norm_eval,
                          allocate=dict(budget_of=0.8, grid=[0.8]))
    assert hook.plan.results['allocated'] == {name: 0.8 for name in HEAD}
    want = plain.model.state_dict()
    for key, value in allocated.model.state_dict().items():
        torch.testing.assert_close(value, want[key], rtol=0, atol=0,
                                   msg=key)


def test_a_resume_keeps_the_allocation_without_measuring(tiny_data,
                                                         tmp_path):
    _, first = run(tmp_path, tiny_data, allocate=dict(budget_of=0.8))
    runner, second = run(tmp_path, tiny_data, max_iters=4, resume=True,
                         allocate=dict(budget_of=0.8))
    assert runner.iter == 4
    assert second.session.settings == first.session.settings
    for name, eps in first.session.settings.items():
        assert runner.model.get_submodule(name).eps == eps
    resumed_log = logs(tmp_path)[-1]
    assert 'allocation: resumed eps per layer' in resumed_log
    assert 'by weight-gradient error' not in resumed_log


def test_images_alone_cannot_be_measured(tiny_data, tmp_path):
    runner, hook = run(tmp_path, tiny_data, max_iters=1,
                       allocate=dict(budget_of=0.8))
    session = GradientAllocationSession(hook.method, hook.plan)
    with pytest.raises(ValueError, match='with allocate measures the '
                       'weight-gradient error on labelled batches: pass '
                       'data_batch'):
        session.calibrate(runner.model, torch.zeros(2, 3, 64, 64))


def test_the_whole_gradient_criterion_is_run_logged_and_labelled(
        tiny_data, tmp_path):
    _, hook = run(tmp_path, tiny_data,
                  allocate=dict(budget_of=0.8, grid=[0.5, 0.95],
                                criterion='whole'))
    results = hook.plan.results
    assert results['allocated_mb'] <= results['allocation_budget_mb']
    assert results['allocation_error'] > 0
    assert 'criterion whole' in logs(tmp_path)[0]
    meta = torch.load(osp.join(str(tmp_path), 'iter_2.pth'),
                      weights_only=False)['meta']['finetune']
    assert get_method('hosvd').label(meta) == (
        'eps by whole-gradient error in the bytes of eps 0.8, '
        'grid 0.5/0.8/0.95')


def test_the_whole_criterion_also_reports_the_layers_relative_errors(
        tiny_data, tmp_path):
    """One value on every layer: both criteria choose it, and the summed
    relative error the planner compares set-ups by is the same."""
    _, layers = run(tmp_path / 'layers', tiny_data, max_iters=1,
                    allocate=dict(budget_mb=1e6, grid=[0.8]))
    _, whole = run(tmp_path / 'whole', tiny_data, max_iters=1,
                   allocate=dict(budget_mb=1e6, grid=[0.8],
                                 criterion='whole'))
    assert whole.plan.results['allocated'] == layers.plan.results[
        'allocated']
    assert whole.plan.results['allocation_relative_error'] == pytest.approx(
        layers.plan.results['allocation_error'], rel=1e-6)
    assert whole.plan.results['allocation_error'] != pytest.approx(
        whole.plan.results['allocation_relative_error'])
    # the error of the whole gradient, what the planner ranks set-ups by:
    # the same choice gives the same, below the sum of the five layers'
    together = whole.plan.results['allocation_whole_error']
    assert together == pytest.approx(
        layers.plan.results['allocation_whole_error'], rel=1e-6)
    assert 0 < together < whole.plan.results['allocation_relative_error'] / 2


def test_a_kept_batch_mode_is_allocated_in_the_paper_hosvd_bytes(
        tiny_data, tmp_path):
    """The budget with the batch mode kept is what the paper's HOSVD
    stores (the batch mode truncated) on the same first batch: at eps 0.5
    it keeps one of the two images, and in those bytes no kept-batch
    setting fits, so layers take the paper's HOSVD at eps 0.5 instead (a
    budget taken from the kept-batch candidate would differ, and fit). In
    eps 0.95's bytes the choice fits and the layers keep their batch
    mode."""
    _, plain = run(tmp_path / 'plain', tiny_data, max_iters=1,
                   allocate=dict(budget_of=0.5, grid=[0.2, 0.5]))
    runner, fallen = run(tmp_path / 'fallen', tiny_data, max_iters=1,
                         keep_batch=True,
                         allocate=dict(budget_of=0.5, grid=[0.2, 0.5]))
    results = fallen.plan.results
    assert results['allocation_budget_mb'] == (
        plain.plan.results['allocation_budget_mb'])
    assert results['allocated_mb'] <= results['allocation_budget_mb']
    paper = dict(eps=0.5, keep_batch=False, spatial_eps=None)
    took = [name for name, value in results['allocated'].items()
            if value == paper]
    assert took and set(results['allocated']) == set(HEAD)
    # the ASPP branches read one input: one setting for the group
    assert len({repr(results['allocated'][name]) for name in ASPP}) == 1
    for name, value in results['allocated'].items():
        decomposition = runner.model.get_submodule(name).decomposition
        assert decomposition.keep_batch == (value != paper), name
        assert decomposition.eps == (value['eps'] if value == paper else
                                     value)
    assert (f"allocation: no choice with keep_batch=True fits the budget "
            f"(what hosvd stores without it at eps 0.5); {took} take that "
            "setting instead") in logs(tmp_path / 'fallen')[0]
    resumed, _ = run(tmp_path / 'fallen', tiny_data, max_iters=2,
                     resume=True, keep_batch=True,
                     allocate=dict(budget_of=0.5, grid=[0.2, 0.5]))
    for name in HEAD:
        assert resumed.model.get_submodule(name).decomposition.keep_batch \
            == (name not in took), name
    assert f"allocation: resumed eps per layer {results['allocated']}" in \
        logs(tmp_path / 'fallen')[-1]
    runner, kept = run(tmp_path / 'kept', tiny_data, max_iters=1,
                       keep_batch=True,
                       allocate=dict(budget_of=0.95, grid=[0.2, 0.95]))
    assert (kept.plan.results['allocated_mb'] <=
            kept.plan.results['allocation_budget_mb'])
    assert set(kept.plan.results['allocated']) == set(HEAD)
    assert all(runner.model.get_submodule(name).decomposition.keep_batch
               for name in HEAD)
    assert get_method('hosvd').label(kept.plan.options).endswith(
        ', batch mode kept')
