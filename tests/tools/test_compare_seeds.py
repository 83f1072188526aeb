"""compare.py over runs of several seeds: mean and spread, the difference to
vanilla with an interval paired by seed, and the front of mIoU against the
whole-step peak."""
import csv
import json
import math
import os

import matplotlib.image
import numpy as np
import pytest

from mmseg_hosvd.protocol.comparison import collect, markdown_table
from mmseg_hosvd.protocol.comparison_table import DIFF_HEADER
from mmseg_hosvd.protocol.pareto_front import mark_front
from mmseg_hosvd.protocol.seed_statistics import t_quantile
from tools import compare

from ..helpers import CONFIGS, write_checkpoint
from .test_compare import write_run

#: Student t's 0.975 quantile for 2 degrees of freedom (a printed table's).
T_975_2 = 4.303
VANILLA = {0: 70.0, 1: 71.0, 2: 72.5}
#: Differences to vanilla -1, -0.5, -2.5: the interval holds 0.
HOSVD = {0: 69.0, 1: 70.5, 2: 70.0}
#: Differences -10, -10.5, -10.5: it does not.
GRADFILTER = {0: 60.0, 1: 60.5, 2: 62.0}


@pytest.fixture
def seeded(tmp_path):
    for seed, miou in VANILLA.items():
        write_run(tmp_path, 'vanilla-l5', 'vanilla', 5, miou, 8.0, 20.0,
                  0.2, step_peak=100.0 + seed, seed=seed)
    for seed, miou in HOSVD.items():
        write_run(tmp_path, 'hosvd-l5', 'hosvd', 5, miou, 0.5, 12.0, 0.22,
                  eps=0.8, step_peak=40.0, seed=seed)
    for seed, miou in GRADFILTER.items():
        write_run(tmp_path, 'gf-l5', 'gradient_filter', 5, miou, 0.6, 15.0,
                  0.21, radii={'a': 4}, step_peak=30.0, seed=seed)
    # one seed shared with vanilla; more memory and less mIoU than HOSVD
    write_run(tmp_path, 'svd-l5', 'svd', 5, 68.5, 0.7, 13.0, 0.25, eps=0.8,
              step_peak=60.0, seed=0)
    write_run(tmp_path, 'svd-l5', 'svd', 5, 69.4, 0.7, 13.0, 0.25, eps=0.8,
              step_peak=60.0, seed=5)
    # no whole-step peak recorded: neither on the front nor off it
    write_run(tmp_path, 'hosvd-l10', 'hosvd', 10, 69.0, 1.0, 14.0, 0.3,
              eps=0.8, seed=0)
    # another model, better in both: pspnet's front is pspnet's own
    write_run(tmp_path, 'fcn-vanilla-l5', 'vanilla', 5, 90.0, 1.0, 1.0, 0.1,
              model_prefix='fcn_r18-d8', step_peak=1.0, seed=0)
    return tmp_path


def paired(values, base):
    """Mean difference and its 95% interval, computed directly."""
    seeds = sorted(set(values) & set(base))
    differences = np.array([values[s] - base[s] for s in seeds])
    half = T_975_2 * differences.std(ddof=1) / math.sqrt(len(seeds))
    mean = differences.mean()
    return mean, mean - half, mean + half


def cells(table):
    """Each line of a Markdown table as {header: cell}."""
    lines = table.splitlines()
    header = [c.strip() for c in lines[0].strip('|').split('|')]
    return [
        dict(zip(header, (c.strip() for c in line.strip('|').split('|')),
                 strict=True)) for line in lines[2:]
    ]


def test_t_quantiles_are_students():
    assert t_quantile(0.975, 2) == pytest.approx(T_975_2, abs=5e-4)
    assert t_quantile(0.975, 1) == pytest.approx(12.706, abs=5e-4)
    assert t_quantile(0.975, 9) == pytest.approx(2.262, abs=5e-4)


def test_seeds_pool_into_rows_with_paired_intervals(seeded):
    rows, skipped = collect([str(seeded / '*')])
    assert skipped == []  # the seed folders' parents are no runs of their own
    by_key = {(r['model'], r['method'], r['layers']): r for r in rows}
    assert len(rows) == len(by_key) == 6
    vanilla = by_key[('pspnet', 'vanilla', 5)]
    assert vanilla['seeds'] == [0, 1, 2]
    assert vanilla['mIoU'] == pytest.approx(np.mean(list(VANILLA.values())))
    assert vanilla['mIoU_std'] == pytest.approx(
        np.std(list(VANILLA.values()), ddof=1))
    assert vanilla['mAcc_std'] == pytest.approx(vanilla['mIoU_std'])
    assert vanilla['step_peak_mb'] == pytest.approx(101.0)
    assert vanilla['mIoU_diff'] is None
    hosvd = by_key[('pspnet', 'hosvd', 5)]
    mean, low, high = paired(HOSVD, VANILLA)
    assert hosvd['mIoU_diff']['mean'] == pytest.approx(mean)
    assert hosvd['mIoU_diff']['low'] == pytest.approx(low, rel=1e-3)
    assert hosvd['mIoU_diff']['high'] == pytest.approx(high, rel=1e-3)
    assert hosvd['mIoU_diff']['seeds'] == 3
    assert hosvd['mIoU_diff']['contains_zero'] and low < 0 < high
    gradfilter = by_key[('pspnet', 'gradient_filter', 5)]
    mean, low, high = paired(GRADFILTER, VANILLA)
    assert gradfilter['mIoU_diff']['high'] == pytest.approx(high, rel=1e-3)
    assert not gradfilter['mIoU_diff']['contains_zero'] and high < 0
    svd = by_key[('pspnet', 'svd', 5)]
    assert svd['seeds'] == [0, 5]
    assert svd['mIoU_diff'] == dict(mean=pytest.approx(-1.5), low=None,
                                    high=None, seeds=1, contains_zero=None)
    assert by_key[('pspnet', 'hosvd', 10)]['mIoU_diff'] is None  # no vanilla
    assert by_key[('pspnet', 'hosvd', 10)]['mIoU_std'] is None  # one seed
    # the front: per model, mIoU (on vanilla's seeds) against the
    # whole-step peak
    assert {key[1:]: r['front'] for key, r in by_key.items()
            if key[0] == 'pspnet'} == {
                ('vanilla', 5): True, ('hosvd', 5): True,
                ('gradient_filter', 5): True, ('svd', 5): False,
                ('hosvd', 10): None}
    assert by_key[('fcn', 'vanilla', 5)]['front'] is True


def test_the_table_shows_spread_intervals_and_front(seeded):
    rows, _ = collect([str(seeded / '*')])
    table = cells(markdown_table(rows))
    by_key = {(c['model'], c['method'], c['layers']): c for c in table}
    vanilla = by_key[('pspnet', 'vanilla', '5')]
    values = list(VANILLA.values())
    assert vanilla['mIoU'] == (f'{np.mean(values):.2f} ± '
                               f'{np.std(values, ddof=1):.2f}')
    assert vanilla['seeds'] == '3' and vanilla[DIFF_HEADER] == '-'
    mean, low, high = paired(HOSVD, VANILLA)
    assert by_key[('pspnet', 'hosvd', '5')][DIFF_HEADER] == (
        f'{mean:+.2f} [{low:+.2f}, {high:+.2f}] ~')
    mean, low, high = paired(GRADFILTER, VANILLA)
    assert by_key[('pspnet', 'gradient_filter', '5')][DIFF_HEADER] == (
        f'{mean:+.2f} [{low:+.2f}, {high:+.2f}]')
    svd = by_key[('pspnet', 'svd', '5')]
    assert svd[DIFF_HEADER] == '-1.50 (1 seed, no interval)'
    assert svd['seeds'] == '2'
    hosvd10 = by_key[('pspnet', 'hosvd', '10')]
    assert hosvd10['mIoU'] == '69.00' and hosvd10['seeds'] == '1'
    front = 'front (mIoU vs whole-step peak)'
    assert [by_key[('pspnet', m, n)][front]
            for m, n in (('vanilla', '5'), ('svd', '5'),
                         ('hosvd', '10'))] == ['yes', 'no', '-']


def test_a_table_of_single_runs_has_no_seed_columns(seeded):
    rows, _ = collect([str(seeded / 'hosvd-l5' / 'seed1'),
                       str(seeded / 'vanilla-l5' / 'seed1')])
    table = markdown_table(rows)
    assert 'seeds' not in table and DIFF_HEADER not in table
    assert '| pspnet | hosvd | eps=0.8 | - | 5 | 70.50 | 75.50 | yes |' in (
        table)


def test_a_seed_found_twice_counts_once(seeded, tmp_path_factory):
    copy = tmp_path_factory.mktemp('copy')
    write_run(copy, 'hosvd-l5', 'hosvd', 5, 10.0, 0.5, 12.0, 0.22, eps=0.8,
              seed=1)
    rows, skipped = collect([str(seeded / 'hosvd-l5'),
                             str(copy / 'hosvd-l5')])
    assert len(rows) == 1 and rows[0]['seeds'] == [0, 1, 2]
    assert rows[0]['mIoU'] == pytest.approx(np.mean(list(HOSVD.values())))
    assert skipped == [(str(copy / 'hosvd-l5' / 'seed1'),
                        f"seed 1 again (also in "
                        f"{seeded / 'hosvd-l5' / 'seed1'})")]


def test_a_record_without_its_seed_takes_its_checkpoints(tmp_path,
                                                        monkeypatch):
    """Records written before they kept the seed: the seed is read from the
    config the checkpoint recorded."""
    monkeypatch.chdir(tmp_path)
    os.symlink(CONFIGS, 'configs')
    work = write_run(tmp_path, 'vanilla-l5', 'vanilla', 5, 70.0, 8.0, 20.0,
                     0.2)
    checkpoint = os.path.join(work, 'iter_120.pth')
    write_checkpoint('configs/pspnet/pspnet_r18-d8_vanilla-l5_'
                     'shapes-target-128x128.py', checkpoint)
    rows, _ = collect([work])
    assert rows[0]['seeds'] == [233]  # the config's randomness.seed
    with open(os.path.join(work, 'test_results.json')) as f:
        assert 'seed' not in json.load(f)
    os.remove(checkpoint)
    rows, _ = collect([work])
    assert rows[0]['seeds'] == [None]


def test_the_front_keeps_ties_and_drops_the_dominated():
    rows = [
        dict(model='m', mIoU=70.0, step_peak_mb=10.0),
        dict(model='m', mIoU=70.0, step_peak_mb=10.0),
        dict(model='m', mIoU=69.0, step_peak_mb=10.0),
        dict(model='m', mIoU=70.0, step_peak_mb=11.0),
        dict(model='m', mIoU=75.0, step_peak_mb=50.0),
        dict(model='m', mIoU=99.0, step_peak_mb=None),
    ]
    mark_front(rows)
    assert [r['front'] for r in rows] == [True, True, False, False, True,
                                          None]


def test_a_row_on_fewer_seeds_is_placed_on_vanillas(tmp_path):
    """A row run on seed 2 alone, vanilla's best, is 0.5 below vanilla
    there: placed by its own mean (72.0, above vanilla's 71.17) it would
    be on the front with more memory; on vanilla's seeds it is below."""
    for seed, miou in VANILLA.items():
        write_run(tmp_path, 'vanilla-l5', 'vanilla', 5, miou, 8.0, 20.0,
                  0.2, step_peak=100.0, seed=seed)
    write_run(tmp_path, 'svd-l5', 'svd', 5, VANILLA[2] - 0.5, 7.0, 18.0,
              0.25, eps=0.8, step_peak=120.0, seed=2)
    rows = {r['method']: r for r in collect([str(tmp_path / '*')])[0]}
    assert rows['svd']['mIoU'] == pytest.approx(72.0)
    assert rows['svd']['mIoU_paired'] == pytest.approx(
        np.mean(list(VANILLA.values())) - 0.5)
    assert (rows['vanilla']['front'], rows['svd']['front']) == (True, False)


def test_command_writes_seed_columns_and_plots(seeded, tmp_path_factory):
    out = tmp_path_factory.mktemp('out')
    assert compare.main([
        str(seeded / '*'), '--csv', str(out / 't.csv'), '--plot',
        str(out / 'p.png'), '--step-peak-plot', str(out / 's.png')
    ]) == 0
    with open(out / 't.csv') as f:
        rows = {(r['model'], r['method'], r['layers']): r
                for r in csv.DictReader(f)}
    hosvd = rows[('pspnet', 'hosvd', '5')]
    mean, low, high = paired(HOSVD, VANILLA)
    assert (hosvd['n_seeds'], hosvd['seeds']) == ('3', '0 1 2')
    assert float(hosvd['mIoU_diff']) == pytest.approx(mean)
    assert float(hosvd['mIoU_diff_low']) == pytest.approx(low, rel=1e-3)
    assert float(hosvd['mIoU_diff_high']) == pytest.approx(high, rel=1e-3)
    assert float(hosvd['mIoU_std']) == pytest.approx(
        np.std(list(HOSVD.values()), ddof=1))
    assert hosvd['front'] == 'True'
    assert rows[('pspnet', 'svd', '5')]['front'] == 'False'
    assert rows[('pspnet', 'svd', '5')]['mIoU_diff_low'] == ''
    assert len(hosvd['work_dir'].split(';')) == 3
    for plot in ('p.png', 's.png'):
        image = matplotlib.image.imread(str(out / plot))
        assert image.shape[0] > 300 and image.shape[1] > 500
