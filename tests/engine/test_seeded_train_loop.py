"""SeededIterBasedTrainLoop's refusals and its warning on another seed (its
exact resume is tested with a real kill in test_faults.py)."""
import pytest
from mmengine.runner import Runner
from torch.utils.data import DataLoader

from mmseg_hosvd.engine import SeededIterBasedTrainLoop

from ..helpers import tiny_runner_config

HOOKS = [dict(type='CompressConvHook', method='vanilla', num_layers=5)]


def test_a_built_loader_or_a_batch_sampler_is_refused():
    with pytest.raises(TypeError, match='from a config dict, got a built '
                       'DataLoader'):
        SeededIterBasedTrainLoop(None, DataLoader(range(4)), max_iters=1)
    loader = dict(batch_sampler=dict(type='AspectRatioBatchSampler'))
    with pytest.raises(ValueError, match="does not take a batch_sampler, "
                       "got batch_sampler={'type': 'AspectRatioBatchSampler'"):
        SeededIterBasedTrainLoop(None, loader, max_iters=1)


def test_resuming_with_another_seed_warns(tiny_data, tmp_path):
    first = tiny_runner_config('fcn', str(tmp_path), tiny_data, HOOKS,
                               max_iters=1)
    assert first.train_cfg.type == 'SeededIterBasedTrainLoop'
    Runner.from_cfg(first).train()
    second = tiny_runner_config('fcn', str(tmp_path), tiny_data, HOOKS,
                                max_iters=1)
    second.randomness = dict(seed=None)
    second.resume = True
    with pytest.warns(UserWarning, match=r'checkpoint of seed 233, but the '
                      r'training samples are keyed by seed \d+.*'
                      r'set randomness.seed=233'):
        Runner.from_cfg(second).train()
