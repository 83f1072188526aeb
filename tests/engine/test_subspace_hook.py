"""hosvd_subspace through the hook and a real Runner: fixed ranks, budget,
allocated eps."""
import pytest
import torch
from mmengine.runner import Runner

from mmseg_hosvd.engine import CompressConvHook
from mmseg_hosvd.engine.hooks.activation_memory_hook import ANALYTICAL_KEY
from mmseg_hosvd.methods.subspace_rank_session import SubspaceRankSession
from mmseg_hosvd.models import Conv2dHOSVDSubspace
from mmseg_hosvd.selection.rank_calibration import input_spectra

from ..helpers import build_model, tiny_runner_config

BRANCHES = [f'decode_head.aspp_modules.{i}.conv' for i in range(4)]


def subspace_convs(model):
    return {
        n: m
        for n, m in model.named_modules()
        if isinstance(m, Conv2dHOSVDSubspace)
    }


def run(tmp_path, tiny_data, max_iters=3, resume=False, **options):
    hooks = [
        dict(type='CompressConvHook', method='hosvd_subspace', num_layers=5,
             **options),
        dict(type='ActivationMemoryHook')
    ]
    cfg = tiny_runner_config('deeplabv3', str(tmp_path), tiny_data, hooks,
                             max_iters=max_iters)
    cfg.resume = resume
    runner = Runner.from_cfg(cfg)
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, CompressConvHook))
    memory = list(runner.message_hub.get_scalar(ANALYTICAL_KEY).data[0])
    return runner, hook, memory


def test_eps_ranks_are_fixed_and_memory_is_constant(tiny_data, tmp_path):
    runner, hook, memory = run(tmp_path, tiny_data, eps=0.8)
    convs = subspace_convs(runner.model)
    assert len(convs) == 5
    assert set(hook.session.ranks) == set(convs)
    for name, conv in convs.items():
        assert conv.ranks == hook.session.ranks[name]
        assert conv.last_stored.ranks == conv.ranks
        # the convolution that decomposes keeps the factors for next step
        assert (conv.factor1 is not None) != conv.last_stored.shared
        assert 'factor1' not in conv.state_dict()
    assert len({hook.session.ranks[b] for b in BRANCHES}) == 1
    assert len(set(memory)) == 1  # the same stored size every iteration
    assert memory[0] == pytest.approx(hook.plan['ranks_mb'])


def test_budget_is_respected(tiny_data, tmp_path):
    budget = 0.05
    _, hook, memory = run(tmp_path, tiny_data, budget_mb=budget)
    assert max(memory) <= budget
    assert hook.plan['ranks_mb'] <= budget
    assert hook.plan['budget_mb'] == budget


def test_budget_too_small_names_the_minimum(tiny_data, tmp_path):
    with pytest.raises(ValueError, match=r'budget_mb=1e-06 is below the '
                       r'minimum of [0-9.]+ MB'):
        run(tmp_path, tiny_data, budget_mb=1e-6)


def test_resume_keeps_the_ranks_and_rebuilds_the_factors(tiny_data,
                                                         tmp_path):
    _, first, _ = run(tmp_path, tiny_data, max_iters=2, eps=0.8)
    runner, second, _ = run(tmp_path, tiny_data, max_iters=4, resume=True,
                            eps=0.8)
    assert runner.iter == 4
    assert second.session.ranks == first.session.ranks
    for conv in subspace_convs(runner.model).values():
        assert (conv.factor0 is not None) != conv.last_stored.shared


def test_allocated_eps_sets_the_ranks_and_a_resume_keeps_both(tiny_data,
                                                               tmp_path):
    allocate = dict(budget_of=0.8, grid=[0.5, 0.95])
    _, first, _ = run(tmp_path, tiny_data, max_iters=2, allocate=allocate)
    allocated = first.plan.results['allocated']
    assert set(allocated.values()) <= {0.5, 0.8, 0.95}
    assert len({allocated[b] for b in BRANCHES}) == 1
    # the ranks reach each layer's allocated eps on the batch measured, so
    # they store what the allocation counted, within its budget
    assert first.plan.results['ranks_mb'] == pytest.approx(
        first.plan.results['allocated_mb'])
    assert (first.plan.results['ranks_mb'] <=
            first.plan.results['allocation_budget_mb'] + 1e-9)
    runner, second, _ = run(tmp_path, tiny_data, max_iters=4, resume=True,
                            allocate=allocate)
    assert runner.iter == 4
    assert second.session.sessions[0].settings == allocated
    assert second.session.sessions[1].ranks == (
        first.session.sessions[1].ranks)
    for name, eps in allocated.items():
        assert runner.model.get_submodule(name).eps == eps


def test_images_alone_cannot_allocate(tiny_data, tmp_path):
    runner, hook, _ = run(tmp_path, tiny_data, max_iters=1,
                          allocate=dict(budget_of=0.8))
    with pytest.raises(ValueError, match='with allocate measures the '
                       'weight-gradient error on labelled batches'):
        hook.session.calibrate(runner.model, torch.zeros(2, 3, 64, 64))


def test_one_allocated_value_trains_as_that_eps(tiny_data, tmp_path):
    """With one grid value the allocation can only choose it: the ranks
    and the weights after training are those of that eps."""
    plain, plain_hook, _ = run(tmp_path / 'plain', tiny_data, eps=0.8,
                               solver='eigh')
    allocated, hook, _ = run(tmp_path / 'alloc', tiny_data, solver='eigh',
                             allocate=dict(budget_of=0.8, grid=[0.8]))
    assert hook.session.sessions[1].ranks == plain_hook.session.ranks
    want = plain.model.state_dict()
    for key, value in allocated.model.state_dict().items():
        torch.testing.assert_close(value, want[key], rtol=0, atol=0,
                                   msg=key)


def test_a_shared_input_takes_one_eps(tiny_data, tmp_path):
    eps = {name: 0.8 for name in ['decode_head.bottleneck.conv'] + BRANCHES}
    eps[BRANCHES[1]] = 0.9
    with pytest.raises(ValueError, match=r'read one input and get fixed '
                       r'ranks together: give them one eps, got '
                       r'\[0.8, 0.9, 0.8, 0.8\]'):
        run(tmp_path, tiny_data, eps=eps)


@pytest.mark.parametrize('kwargs,match', [
    (dict(method='hosvd', num_layers=5, budget_mb=1.0),
     "budget_mb needs method='hosvd_subspace'"),
    (dict(method='hosvd_subspace', num_layers=5, budget_mb=1.0,
          allocate=dict(budget_of=0.8)),
     'hosvd_subspace takes budget_mb .* or allocate .*, not both'),
    (dict(method='hosvd_subspace', num_layers=5, budget_mb=0),
     'budget_mb must be a number > 0, got 0'),
    (dict(method='hosvd_subspace', num_layers=5, rank_batches=0),
     'rank_batches must be an int >= 1, got 0'),
])
def test_subspace_arguments_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CompressConvHook(**kwargs)


def test_bad_ranks_are_named():
    model = build_model('pspnet')
    CompressConvHook(method='hosvd_subspace', num_layers=5).apply(model)
    conv = model.decode_head.bottleneck.conv
    with pytest.raises(ValueError, match=r'got \(1, 2, 0, 1\)'):
        conv.set_ranks((1, 2, 0, 1))
    conv.set_ranks((2, 8, 4, 4))
    conv.train()
    x = torch.randn(2, 3, 64, 64)
    model._forward(x).sum().backward()
    assert conv.last_stored.ranks == (2, 8, 4, 4)


def test_the_rank_measurement_leaves_training_as_it_was(tiny_data,
                                                         tmp_path):
    """With the norms in training mode, the measurement's forward updates
    their running statistics; the session puts them back, and the random
    state a dropout would draw from, so training goes on as without it."""
    runner, hook, _ = run(tmp_path, tiny_data, max_iters=1,
                          norm_eval=False)
    model = runner.model.train()
    batch = next(iter(runner.train_dataloader))
    inputs = model.data_preprocessor(batch, True)['inputs']

    def state():
        """The random state and the norms' statistics (the subspace
        layers' own factors are what a calibration sets anew)."""
        return torch.get_rng_state(), {
            name: buffer.clone()
            for name, buffer in model.named_buffers()
            if name.rsplit('.', 1)[-1] in ('running_mean', 'running_var',
                                           'num_batches_tracked')}

    def assert_same(first, second):
        assert torch.equal(first[0], second[0])
        for name, buffer in first[1].items():
            torch.testing.assert_close(second[1][name], buffer, rtol=0,
                                       atol=0, msg=name)

    before = state()
    assert SubspaceRankSession(hook.plan).calibrate(model, inputs)
    assert_same(before, state())
    input_spectra(model, hook.plan.compressed, inputs)  # the bare forward
    changed = state()
    assert not torch.equal(changed[1]['backbone.stem.1.running_mean'],
                           before[1]['backbone.stem.1.running_mean'])
