"""compare.py keeps runs that started from different checkpoints apart:
their seeds do not pool, and a difference pairs runs of one start."""
import json

import pytest

from mmseg_hosvd.protocol.comparison import collect
from mmseg_hosvd.protocol.fine_tuning_gain import calibrations
from mmseg_hosvd.protocol.start_groups import separate_starts
from mmseg_hosvd.utils.file_digest import file_digest
from tools import compare

from .test_compare import write_run

#: Two calibrations of one model (two machines): vanilla and HOSVD, three
#: seeds each, HOSVD 1 below vanilla on the first and 3 on the second.
MACHINES = {'a': (70.0, -1.0), 'b': (60.0, -3.0)}


@pytest.fixture
def two_starts(tmp_path):
    for start, (vanilla, difference) in MACHINES.items():
        for seed in range(3):
            write_run(tmp_path / start, 'vanilla-l5', 'vanilla', 5,
                      vanilla + seed, 8.0, 20.0, 0.2, step_peak=100.0,
                      seed=seed, start=start)
            write_run(tmp_path / start, 'hosvd-l5', 'hosvd', 5,
                      vanilla + seed + difference, 0.5, 12.0, 0.2, eps=0.8,
                      step_peak=50.0, seed=seed, start=start)
    return tmp_path


def test_each_start_is_its_own_model(two_starts, capsys):
    rows, skipped = collect([str(two_starts / '*' / '*')])
    assert skipped == []  # no seed counted "again"
    by_model = {(r['model'], r['method']): r for r in rows}
    assert set(by_model) == {(f'pspnet@{s * 8}', m) for s in MACHINES
                             for m in ('vanilla', 'hosvd')}
    for start, (vanilla, difference) in MACHINES.items():
        assert by_model[(f'pspnet@{start * 8}', 'vanilla')]['mIoU'] == (
            pytest.approx(vanilla + 1))
        diff = by_model[(f'pspnet@{start * 8}', 'hosvd')]['mIoU_diff']
        assert diff['mean'] == pytest.approx(difference)
        assert diff['seeds'] == 3
    assert compare.main([str(two_starts / '*' / '*')]) == 0
    err = capsys.readouterr().err
    assert ('note: the runs of pspnet started from 2 checkpoints '
            '(aaaaaaaa, bbbbbbbb: SHA-256 prefixes)') in err


def test_one_start_or_unrecorded_starts_keep_the_model_name():
    runs = [dict(model='fcn', start='aaaaaaaa'), dict(model='fcn', start=None),
            dict(model='upernet', start=None)]
    separate_starts(runs)
    assert [r['model'] for r in runs] == ['fcn', 'fcn', 'upernet']
    runs.append(dict(model='fcn', start='bbbbbbbb'))
    separate_starts(runs)
    assert [r['model'] for r in runs] == [
        'fcn@aaaaaaaa', 'fcn@unknown', 'upernet', 'fcn@bbbbbbbb']


def test_the_calibration_is_found_under_its_start(tmp_path):
    calib = tmp_path / 'pspnet_r18-d8_calib_shapes-target-128x128'
    (calib / '20261206_000000' / 'vis_data').mkdir(parents=True)
    (calib / '20261206_000000' / 'vis_data' / 'scalars.json').write_text(
        json.dumps(dict(mIoU=33.5, step=100)) + '\n')
    for iteration in (50, 100):
        (calib / f'iter_{iteration}.pth').write_bytes(bytes([iteration]) * 9)
    found = calibrations([str(calib)], lambda name: 'pspnet', by_start=True)
    digest = file_digest(str(calib / 'iter_100.pth'))[:8]
    assert found == {'pspnet': 33.5, f'pspnet@{digest}': 33.5}
    # one start per model: no checkpoint is read
    assert calibrations([str(calib)], lambda name: 'pspnet') == {
        'pspnet': 33.5}
