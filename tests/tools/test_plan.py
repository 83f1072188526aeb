"""tools/plan.py end to end: real probes, each tools/train.py in a
process of its own, the recommendation, and a real run of the config it
writes."""
import json
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

from mmseg_hosvd.engine.hooks import PROBE_RECORD_FILE
from mmseg_hosvd.planning.probe_runs import probe_options, read_probe
from mmseg_hosvd.planning.setups import get_setup
from tools import plan

from ..helpers import ROOT, tiny_runner_config

SETUPS = ['vanilla', 'vanilla-exact', 'hosvd-eps0.8', 'hosvd-eps-alloc0.8',
          'hosvd-eps0.8-lean-mb1', 'vanilla-exact-amp']


@pytest.fixture(scope='module')
def planned(tiny_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('plan')
    config = str(tmp / 'finetune.py')
    tiny_runner_config('deeplabv3', str(tmp / 'unused'), tiny_data,
                       max_iters=3).dump(config)
    records = str(tmp / 'plan.json')
    out = str(tmp / 'recommended.py')
    code = plan.main([config, '--budget-mb', '1e6', '--setups', *SETUPS,
                      '--iters', '3', '--jobs', '2', '--work-dir',
                      str(tmp / 'probes'), '--json', records, '--out', out])
    with open(records) as f:
        return config, json.load(f), out, tmp, code


def probe_meta(tmp, name):
    """The meta of the record of the probe of set-up ``name``."""
    with open(tmp / 'probes' / name / PROBE_RECORD_FILE) as f:
        return json.load(f)['meta']


def test_every_set_up_is_measured(planned, capsys):
    """Two probes at a time, reported in the order asked for."""
    _, records, _, tmp, code = planned
    assert code == 0
    assert [r['name'] for r in records] == SETUPS
    # a record each, no checkpoint (Swin-T UPerNet's is 132 MB)
    assert not list((tmp / 'probes').glob('*/*.pth'))
    for record in records:
        assert record['peak_mb'] > 0 and record['step_s'] > 0
        assert record['exact'] == get_setup(record['name']).exact
    errors = {r['name']: r['error'] for r in records}
    assert errors['vanilla'] == errors['vanilla-exact'] == 0.0
    for hosvd in ('hosvd-eps0.8', 'hosvd-eps-alloc0.8',
                  'hosvd-eps0.8-lean-mb1'):
        # the whole gradient's error, below the sum of the 5 layers' own
        finetune = probe_meta(tmp, hosvd)['finetune']
        assert errors[hosvd] == pytest.approx(
            finetune['allocation_whole_error'], rel=1e-9)
        assert 0 < errors[hosvd] < finetune['allocation_relative_error']
    # the allocated set-up chooses an eps and a spatial eps per layer
    probe_log = (tmp / 'probes' / 'hosvd-eps-alloc0.8' / 'probe.log')
    assert 'allocation: eps and spatial_eps per layer' in probe_log.read_text()
    # bfloat16 autocast, over the same layers: far below eps 0.8
    autocast = probe_meta(tmp, 'vanilla-exact-amp')[
        'autocast_gradient_error']
    assert errors['vanilla-exact-amp'] == pytest.approx(
        autocast['whole_relative_error'], rel=1e-9)
    assert 0 < errors['vanilla-exact-amp'] < errors['hosvd-eps0.8'] / 5


def test_the_written_config_trains_within_the_measured_peak(planned):
    config, records, out, tmp, _ = planned
    text = open(out).read()
    assert text.startswith('# Written by tools/plan.py.\n# set-up ')
    chosen = next(r for r in records if f"set-up {r['name']} " in text)
    assert chosen['exact']
    work_dir = str(tmp / 'recommended')
    subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'train.py'),
                    out, '--work-dir', work_dir, '--cfg-options'] +
                   probe_options(3, None), check=True, capture_output=True)
    measured = read_probe(work_dir, get_setup(chosen['name']))
    assert measured.peak_mb <= chosen['peak_mb'] * 1.02


def test_a_budget_below_every_peak_is_refused_with_the_least(
        planned, tmp_path, capsys):
    config = planned[0]
    code = plan.main([config, '--budget-mb', '0.001', '--setups', 'vanilla',
                      '--iters', '3', '--work-dir', str(tmp_path)])
    assert code == 1
    err = capsys.readouterr().err
    assert ('error: no set-up fits 0.001 MB: the smallest measured '
            'whole-step peak is ') in err
    assert re.search(r'\(vanilla\); planning took \d+ s\n$', err)


def test_a_config_without_fine_tuning_is_refused(tmp_path):
    config = tmp_path / 'plain.py'
    config.write_text('custom_hooks = [dict(type="ActivationMemoryHook")]\n')
    with pytest.raises(ValueError, match='needs a fine-tuning config with '
                       'one CompressConvHook'):
        plan.main([str(config), '--budget-mb', '10'])


def test_probes_that_fail_are_left_out_and_named(planned, tmp_path, capsys):
    config = planned[0]
    code = plan.main([config, '--budget-mb', '100', '--setups', 'vanilla',
                      'qact8', '--iters', '3', '--timeout', '0.5',
                      '--work-dir', str(tmp_path)])
    assert code == 1
    captured = capsys.readouterr()
    assert 'set-up vanilla left out: ' in captured.out
    assert 'set-up qact8 left out: ' in captured.out
    assert 'error: no set-up could be measured' in captured.err


@pytest.mark.parametrize('flags,match', [
    (['--budget-mb', '0'], '--budget-mb must be > 0, got 0'),
    (['--budget-mb', '10', '--iters', '2'], '--iters must be > 2'),
    (['--budget-mb', '10', '--time-factor', '0.5'],
     '--time-factor must be >= 1, got 0.5'),
    (['--budget-mb', '10', '--jobs', '0'], '--jobs must be >= 1, got 0'),
])
def test_bad_arguments_are_named_before_any_probe(tmp_path, capsys, flags,
                                                  match):
    with pytest.raises(SystemExit):
        plan.main([str(tmp_path / 'unused.py')] + flags)
    assert match in capsys.readouterr().err


def test_by_default_set_ups_the_batch_cannot_take_are_skipped(capsys):
    """A batch of 2 cannot accumulate micro-batches of 4 or 2: the default
    list leaves them out and says so; the others keep their order."""
    names = [s.name for s in plan.chosen_setups(None, 2)]
    assert 'vanilla-exact-mb4' not in names
    assert 'vanilla-exact-mb2' not in names
    assert names[:4] == ['vanilla', 'vanilla-exact', 'vanilla-exact-ckpt',
                         'vanilla-exact-mb1']
    out = capsys.readouterr().out
    assert ("skipped: set-up 'vanilla-exact-mb4' accumulates micro-batches "
            'of 4 image(s)') in out
    assert "skipped: set-up 'vanilla-exact-mb2'" in out
    assert len(plan.chosen_setups(None, 8)) == len(plan.setup_names())


@pytest.mark.parametrize('layers,measured', [(5, False), (1, False),
                                             (6, True), (None, True)])
def test_checkpointing_is_skipped_up_to_5_layers_unless_named(
        capsys, layers, measured):
    """It lowered no protocol model's peak at 5 layers: by default a probe
    for nothing there, said so; above 5, or unknown, it is measured."""
    names = [s.name for s in plan.chosen_setups(None, 8, None, layers)]
    assert ('vanilla-exact-ckpt' in names) == measured
    assert len(names) == len(plan.setup_names()) - (not measured)
    out = capsys.readouterr().out
    assert (f"skipped: set-up 'vanilla-exact-ckpt': the config fine-tunes "
            f'{layers} layer(s), and checkpointing lowered no whole-step '
            'peak of the protocol models at 5 (name it in --setups to '
            'measure it)' in out) == (not measured)
    named = plan.chosen_setups(['vanilla-exact-ckpt', 'vanilla'], 8, None,
                               layers)
    assert [s.name for s in named] == ['vanilla-exact-ckpt', 'vanilla']


def test_a_set_up_named_twice_is_measured_once():
    named = plan.chosen_setups(['vanilla', 'qact8', 'vanilla'], 8)
    assert [s.name for s in named] == ['vanilla', 'qact8']


def test_the_config_s_layer_count_decides_on_checkpointing(
        planned, tmp_path, capsys):
    """End to end, the 5-layer config's default set-ups: the probes are
    cut short (all left out), checkpointing is not even started."""
    code = plan.main([planned[0], '--budget-mb', '100', '--iters', '3',
                      '--timeout', '0.05', '--jobs', '2', '--work-dir',
                      str(tmp_path)])
    assert code == 1
    out = capsys.readouterr().out
    assert ("skipped: set-up 'vanilla-exact-ckpt': the config fine-tunes "
            '5 ') in out
    started = [line.split('measuring ')[1] for line in out.splitlines()
               if 'measuring ' in line]
    assert 'vanilla-exact-ckpt' not in started
    assert 'hosvd-eps-alloc0.8' in started[:2]  # the longest starts first
    skipped = [line.split("'")[1] for line in out.splitlines()
               if line.startswith('skipped: set-up ')]
    assert sorted(started + skipped) == sorted(plan.setup_names())


def test_autocast_set_ups_are_skipped_where_bfloat16_is_slow(capsys):
    names = [s.name for s in plan.chosen_setups(None, 8, 'too slow here')]
    assert 'vanilla-exact-amp' not in names
    assert 'hosvd-eps0.8-lean-amp' not in names
    assert len(names) == len(plan.setup_names()) - 2
    assert ("skipped: set-up 'vanilla-exact-amp': too slow here"
            in capsys.readouterr().out)
    named = plan.chosen_setups(['vanilla-exact-amp'], 8, 'too slow here')
    assert [s.name for s in named] == ['vanilla-exact-amp']


def test_bfloat16_is_timed_and_given_as_the_reason_when_slow(monkeypatch):
    assert plan.autocast_slowdown() > 0  # on this machine, whatever it is
    monkeypatch.setattr(plan, 'autocast_slowdown', lambda device: 50.0)
    assert plan.slow_autocast_reason(50) is None
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    assert plan.slow_autocast_reason(2) == (
        'a bfloat16 convolution takes 50 times as long as in float32 on '
        f'this {device}, more than --time-factor 2 (name the set-up in '
        '--setups to measure it)')


def test_a_named_set_up_the_batch_cannot_take_is_refused_before_probes(
        planned, tmp_path):
    config = planned[0]
    with pytest.raises(ValueError, match="'vanilla-exact-mb2' accumulates "
                       'micro-batches of 2 .* the config has 2'):
        plan.main([config, '--budget-mb', '10', '--setups', 'vanilla',
                   'vanilla-exact-mb2', '--work-dir', str(tmp_path)])
    assert not (tmp_path / 'vanilla').exists()
