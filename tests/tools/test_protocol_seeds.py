"""The protocol runner's seeds: one run per row and seed, each in its own
work dir, trained with that seed, skipped and found stale on its own."""
import json
import os
import os.path as osp

from mmengine.config import Config

from mmseg_hosvd.protocol import matrix as protocol
from mmseg_hosvd.protocol import runs as protocol_runs
from mmseg_hosvd.protocol.comparison import collect
from mmseg_hosvd.protocol.config_drift import trained_config

from ..helpers import CONFIGS, ROOT, tiny_runner_config


def test_seeds_run_each_row_once_per_seed():
    from tools import run_protocol
    args = run_protocol.parse_args(['--models', 'fcn', '--methods',
                                    'vanilla', 'hosvd-eps0.8', '--layers',
                                    '5', '--seeds', '0', '1', '2'])
    assert args.seeds == [0, 1, 2]
    runs = run_protocol.finetuning_runs('fcn', args)
    assert [(osp.basename(c), s) for c, s, _ in runs] == [
        (osp.basename(protocol.config_path('fcn', 'finetune', method, 5)),
         seed) for method in ('vanilla', 'hosvd-eps0.8') for seed in (0, 1, 2)
    ]
    assert runs[1][2] == 'fcn vanilla l5 seed 1'
    # without --seeds: once, with the config's seed, in its work dir
    single = run_protocol.parse_args(['--models', 'fcn', '--methods',
                                      'vanilla', '--layers', '5'])
    assert single.seeds is None
    assert run_protocol.finetuning_runs('fcn', single) == [
        (protocol.config_path('fcn', 'finetune', 'vanilla', 5), None,
         'fcn vanilla l5')]


def test_a_seed_has_its_own_work_dir_below_the_configs():
    config = protocol.config_path('fcn', 'finetune', 'vanilla', 5,
                                  root=CONFIGS)
    name = osp.splitext(osp.basename(config))[0]
    assert protocol.work_dir(config) == osp.join('work_dirs', name)
    assert protocol.work_dir(config, seed=3) == osp.join(
        'work_dirs', name, 'seed3')
    assert protocol.final_checkpoint(config, seed=3) == osp.join(
        'work_dirs', name, 'seed3', 'iter_120.pth')


def test_a_seeded_stage_trains_with_its_seed_in_its_own_work_dir(
        tiny_data, tmp_path, monkeypatch):
    """tools/train.py, run as the protocol runs it for ``--seeds 5``."""
    monkeypatch.chdir(tmp_path)
    os.symlink(osp.join(ROOT, 'tools'), 'tools')
    config = 'fcn_tiny.py'
    tiny_runner_config('fcn', str(tmp_path / 'default'), tiny_data).dump(
        config)
    assert Config.fromfile(config).randomness.seed == 233
    messages = []
    record = protocol_runs.ensure_trained_and_tested(config, messages.append,
                                                     seed=5)
    work = osp.join('work_dirs', 'fcn_tiny', 'seed5')
    checkpoint = osp.join(work, 'iter_2.pth')
    assert messages[0] == (
        f'train: python tools/train.py {config} --work-dir {work} --test '
        '--cfg-options randomness.seed=5 ' +
        ' '.join(protocol_runs.NO_VALIDATION))
    assert trained_config(checkpoint).randomness.seed == 5
    assert record['seed'] == 5
    assert osp.abspath(record['checkpoint']) == osp.abspath(checkpoint)
    with open(osp.join(work, 'test_results.json')) as f:
        assert json.load(f)['seed'] == 5
    assert not osp.exists(protocol.final_checkpoint(config))
    # done for this seed: both reused; not done for another
    messages.clear()
    protocol_runs.ensure_trained_and_tested(config, messages.append, seed=5)
    assert messages == [f'train: reusing {checkpoint}',
                        f'test: reusing {work}/test_results.json']
    assert not osp.exists(protocol.final_checkpoint(config, seed=6))
    # up to date with the seed it was asked for, not with the file's own
    assert protocol.stale_reason(config, checkpoint, seed=5) is None
    assert protocol.stale_reason(config, checkpoint) == (
        f'trained with another randomness than {config} has now')
    assert protocol.stale_reason(config, checkpoint, seed=6) == (
        f'trained with another randomness than {config} has now')
    # a record of another seed in this work dir is not this seed's
    with open(osp.join(work, 'test_results.json')) as f:
        written = json.load(f)
    written['seed'] = 6
    with open(osp.join(work, 'test_results.json'), 'w') as f:
        json.dump(written, f)
    messages.clear()
    record = protocol_runs.ensure_trained_and_tested(config, messages.append,
                                                     seed=5)
    assert messages[1] == (f'test: python tools/test.py {config} '
                           f'{checkpoint} --work-dir {work}')
    assert record['seed'] == 5
    # compare.py finds the run below the config's work dir, with its seed
    rows, skipped = collect([protocol.work_dir(config)])
    assert [r['seeds'] for r in rows] == [[5]] and skipped == []
