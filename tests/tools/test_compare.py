"""compare.py: table, ratios to vanilla, CSV, plot, and what it skips."""
import csv
import json
import os.path as osp
import subprocess
import sys

import matplotlib.image
import pytest

from mmseg_hosvd.protocol.comparison import (
    collect,
    markdown_table,
    setting_label,
)

from ..helpers import ROOT


def write_run(root, name, method, layers, miou, analytical, measured, step,
              eps=None, radii=None, model_prefix='pspnet_r18-d8',
              solver=None, learned=None, reductions=None, step_peak=None,
              seed=None, start=None, **lean):
    work = root / name if seed is None else root / name / f'seed{seed}'
    work.mkdir(parents=True)
    record = dict(
        config=f'configs/pspnet/{model_prefix}_{name}.py',
        checkpoint=str(work / 'iter_120.pth'),
        metrics=dict(mIoU=miou, mAcc=miou + 5, aAcc=90.0),
        activation_memory=dict(
            analytical_mb=dict(peak=analytical, mean=analytical * 0.8),
            measured_mb=dict(peak=measured, mean=measured * 0.9),
            iterations=120),
        finetune=dict(method=method, num_layers=layers, eps=eps,
                      radii=radii, solver=solver, **lean),
        step_time_s=step,
        reductions=reductions)
    if step_peak is not None:
        record['step_peak_memory'] = dict(peak_increment_mb=step_peak)
    if seed is not None:
        record['seed'] = seed
    if start is not None:  # the SHA-256 of the checkpoint it started from
        record['start_checkpoint'] = dict(
            start=dict(path='calib/iter_100.pth', sha256=start * 64),
            machine=dict(processor='a CPU', cpus=2, torch='2.13.0'))
    if learned is not None:
        record['weight_change'] = dict(min_relative_change=learned[0],
                                       min_grad_share=learned[1],
                                       min_change_over_decay=learned[2])
    with open(work / 'test_results.json', 'w') as f:
        json.dump(record, f)
    return str(work)


@pytest.fixture
def runs(tmp_path):
    write_run(tmp_path, 'vanilla-l5', 'vanilla', 5, 70.0, 8.0, 20.0, 0.20,
              learned=(0.0123, 0.97, 12.5), step_peak=100.0)
    # a peer's row: vanilla with accumulation (listed after the plain one)
    write_run(tmp_path, 'vanilla-mb1-l5', 'vanilla', 5, 70.1, 1.0, 2.5, 0.25,
              step_peak=30.0,
              reductions=dict(accumulate=8, micro_batch=1, amp=None,
                              checkpoint=False, frozen_prefix=None,
                              chunked_loss=None))
    write_run(tmp_path, 'hosvd-l5', 'hosvd', 5, 68.0, 0.5, 12.0, 0.22,
              eps=0.8, solver='auto')
    write_run(tmp_path, 'hosvd-eigh-l5', 'hosvd', 5, 68.0, 0.5, 12.0, 0.3,
              eps=0.8, solver='eigh')
    write_run(tmp_path, 'gf-l5', 'gradient_filter', 5, 60.0, 0.6, 15.0,
              0.21, radii={'a': 4}, learned=(0.0004, 0.0, 1.0))
    write_run(tmp_path, 'hosvd-l10', 'hosvd', 10, 69.0, 1.0, 14.0, 0.3,
              eps=0.8)
    write_run(tmp_path, 'hosvd-lean8-l10', 'hosvd', 10, 68.5, 1.0, 3.0, 0.3,
              eps=0.8, lean=True, lean_bits=8)
    (tmp_path / 'half_finished').mkdir()
    (tmp_path / 'no_metric').mkdir()
    with open(tmp_path / 'no_metric' / 'test_results.json', 'w') as f:
        json.dump(dict(metrics=dict(aAcc=1.0)), f)
    (tmp_path / 'a_file.txt').write_text('x')
    return tmp_path


def test_rows_ratios_and_skips(runs):
    rows, skipped = collect([str(runs / '*')])
    by_name = {osp.basename(r['work_dir']): r for r in rows}
    assert set(by_name) == {'vanilla-l5', 'vanilla-mb1-l5', 'hosvd-l5',
                            'hosvd-eigh-l5', 'gf-l5', 'hosvd-l10',
                            'hosvd-lean8-l10'}
    # the peer's row is told apart, and compared with plain vanilla
    peer = by_name['vanilla-mb1-l5']
    assert peer['reductions'] == 'mb1' and by_name['vanilla-l5'][
        'reductions'] == ''
    assert peer['step_peak_ratio'] == pytest.approx(0.3)
    assert by_name['vanilla-l5']['step_peak_ratio'] == 1.0
    hosvd = by_name['hosvd-l5']
    assert hosvd['model'] == 'pspnet' and hosvd['setting'] == 'eps=0.8'
    assert hosvd['analytical_ratio'] == pytest.approx(0.5 / 8.0)
    assert hosvd['measured_ratio'] == pytest.approx(12.0 / 20.0)
    assert hosvd['time_ratio'] == pytest.approx(0.22 / 0.20)
    assert by_name['gf-l5']['setting'] == 'r=4'
    assert by_name['hosvd-eigh-l5']['setting'] == 'eps=0.8, eigh'
    assert by_name['hosvd-l10']['analytical_ratio'] is None  # no vanilla-l10
    # coded LayerNorm/GELU inputs (approximate) are told apart
    coded = by_name['hosvd-lean8-l10']
    assert (coded['method'], coded['setting']) == ('hosvd-lean',
                                                   'eps=0.8, lean_bits=8')
    reasons = dict((osp.basename(p), r) for p, r in skipped)
    assert 'no test_results.json' in reasons['half_finished']
    assert "lacks ['mIoU', 'mAcc']" in reasons['no_metric']
    assert reasons['a_file.txt'] == 'not a directory'
    table = markdown_table(rows)
    assert table.count('\n') == len(rows) + 1
    assert '| pspnet | hosvd | eps=0.8 | - | 5 | 68.00 |' in table
    assert '| pspnet | vanilla |  | mb1 | 5 | 70.10 |' in table
    # the least weight change and gradient share over the fine-tuned layers:
    # a run where some layer only decayed stands out; '-' when not recorded
    assert by_name['gf-l5']['min_grad_share'] == 0.0
    assert table.splitlines()[0].endswith(
        '| least weight change | least change / weight decay alone | '
        'least gradient share |')
    assert '| 0.0123 | 12.5 | 0.970 |' in table
    assert '| 0.0004 | 1.0 | 0.000 |' in table
    assert by_name['hosvd-l10']['min_rel_change'] is None


def test_command_writes_csv_markdown_and_plot(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp('out')
    result = subprocess.run(
        [sys.executable, 'tools/compare.py', str(runs / '*'), '--csv',
         str(out / 't.csv'), '--markdown', str(out / 't.md'), '--plot',
         str(out / 'p.png')],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert 'skipped' in result.stderr and 'half_finished' in result.stderr
    assert '| pspnet | vanilla |' in result.stdout
    with open(out / 't.csv') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 7 and 'measured_ratio' in rows[0]
    assert {r['min_grad_share'] for r in rows} == {'0.97', '0.0', ''}
    image = matplotlib.image.imread(str(out / 'p.png'))
    assert image.shape[0] > 300 and image.shape[1] > 500


def test_nothing_to_compare_fails_clearly(tmp_path):
    result = subprocess.run(
        [sys.executable, 'tools/compare.py', str(tmp_path / 'none*')],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert 'no finished runs found' in result.stderr


@pytest.mark.parametrize('finetune,label', [
    (dict(method='hosvd', eps=0.8, lean=True,
          lean_eps=dict(norm=0.8, classifier=None)),
     'eps=0.8, classifier whole'),
    (dict(method='hosvd', eps=0.8, lean=True,
          lean_eps=dict(norm=0.8, classifier=0.99)), 'eps=0.8'),
    (dict(method='hosvd', eps=0.8, lean=False, lean_eps=None), 'eps=0.8'),
])
def test_a_lean_classifier_kept_whole_is_told_apart(finetune, label):
    assert setting_label(finetune) == label
