"""compare.py's baselines: each row against vanilla with the same exact
reductions, and each vanilla layer count against the calibrated classifier
and the next smaller count, paired by seed."""
import json

import numpy as np
import pytest

from mmseg_hosvd.protocol.comparison import collect, expand, model_name
from mmseg_hosvd.protocol.fine_tuning_gain import (
    calibrated_miou,
    calibrations,
    gain_rows,
    gain_table,
)
from mmseg_hosvd.reductions.describe import baseline_tag
from tools import compare

from .test_compare import write_run
from .test_compare_seeds import HOSVD, VANILLA, paired


def exact(**peer):
    """A run's reductions: the protocol's frozen prefix and chunked loss,
    and ``peer``'s."""
    return dict(dict(accumulate=1, micro_batch=8, amp=None, checkpoint=False,
                     frozen_prefix=1, chunked_loss=1), **peer)


def test_rows_are_compared_with_vanilla_running_the_same_exact_reductions(
        tmp_path):
    for seed, miou in VANILLA.items():
        write_run(tmp_path, 'vanilla-l5', 'vanilla', 5, miou, 8.0, 20.0, 0.2,
                  step_peak=100.0, seed=seed, reductions=exact())
        # plain vanilla (no reductions) with other results: not the baseline
        write_run(tmp_path, 'plain-vanilla-l5', 'vanilla', 5, miou - 5, 8.0,
                  20.0, 0.1, step_peak=400.0, seed=seed)
    for seed, miou in HOSVD.items():
        write_run(tmp_path, 'hosvd-l5', 'hosvd', 5, miou, 0.5, 12.0, 0.22,
                  eps=0.8, step_peak=40.0, seed=seed, reductions=exact())
        write_run(tmp_path, 'vanilla-mb1-l5', 'vanilla', 5, VANILLA[seed],
                  1.0, 2.5, 0.4, step_peak=25.0, seed=seed,
                  reductions=exact(accumulate=8, micro_batch=1))
    rows, _ = collect([str(tmp_path / '*')])
    by_key = {(r['method'], r['reductions']): r for r in rows}
    base = by_key[('vanilla', 'prefix1-chunkloss1')]
    assert base['mIoU_diff'] is None and base['step_peak_ratio'] == 1.0
    hosvd = by_key[('hosvd', 'prefix1-chunkloss1')]
    mean, low, high = paired(HOSVD, VANILLA)
    assert hosvd['mIoU_diff']['mean'] == pytest.approx(mean)
    assert hosvd['mIoU_diff']['low'] == pytest.approx(low, rel=1e-3)
    assert hosvd['step_peak_ratio'] == pytest.approx(0.4)
    accumulation = by_key[('vanilla', 'mb1-prefix1-chunkloss1')]
    assert accumulation['mIoU_diff']['mean'] == pytest.approx(0.0)
    assert accumulation['step_peak_ratio'] == pytest.approx(0.25)
    assert accumulation['time_ratio'] == pytest.approx(2.0)
    plain = by_key[('vanilla', '')]
    assert plain['mIoU_diff'] is None and plain['step_peak_ratio'] == 1.0


def test_rows_with_the_concatenation_in_place_have_their_own_baseline(
        tmp_path):
    """The in-place concatenation is exact but lowers peaks: a row that
    runs it is compared with vanilla running it too, not with the
    protocol's vanilla."""
    for seed, miou in VANILLA.items():
        write_run(tmp_path, 'vanilla-l5', 'vanilla', 5, miou, 8.0, 20.0, 0.2,
                  step_peak=100.0, seed=seed, reductions=exact())
        write_run(tmp_path, 'vanilla-concat-l5', 'vanilla', 5, miou + 1,
                  8.0, 20.0, 0.2, step_peak=90.0, seed=seed,
                  reductions=exact(concat=True))
    for seed, miou in HOSVD.items():
        write_run(tmp_path, 'qact2-concat-l5', 'quantized', 5, miou, 0.5,
                  12.0, 0.22, step_peak=45.0, seed=seed,
                  reductions=exact(concat=True))
    rows, _ = collect([str(tmp_path / '*')])
    by_key = {(r['method'], r['reductions']): r for r in rows}
    codes = by_key[('quantized', 'prefix1-chunkloss1-concat')]
    assert codes['step_peak_ratio'] == pytest.approx(0.5)
    mean, _, _ = paired(HOSVD, {s: m + 1 for s, m in VANILLA.items()})
    assert codes['mIoU_diff']['mean'] == pytest.approx(mean)
    assert by_key[('vanilla', 'prefix1-chunkloss1-concat')][
        'mIoU_diff'] is None


@pytest.mark.parametrize('tag, baseline', [
    ('', ''), (None, ''), ('amp', ''), ('prefix1-chunkloss1',
                                        'prefix1-chunkloss1'),
    ('mb1-ckpt-amp-prefix2-chunkloss1', 'prefix2-chunkloss1'),
    ('mb4-chunkloss2', 'chunkloss2'),
    ('mb1-prefix1-chunkloss1-concat', 'prefix1-chunkloss1-concat'),
    ('ckpt-concat', 'concat'),
])
def test_the_baseline_keeps_only_the_exact_reductions(tag, baseline):
    assert baseline_tag(tag) == baseline


def write_calibration(root, miou, model_prefix='pspnet_r18-d8'):
    """A calibration work dir as MMEngine leaves it: two runs, the newer
    one's scalars ending with a validation."""
    work = root / f'{model_prefix}_calib_shapes-target-128x128'
    for stamp, value in (('20260101_000000', 1.0), ('20260102_000000',
                                                     miou)):
        scalars = work / stamp / 'vis_data'
        scalars.mkdir(parents=True)
        (scalars / 'scalars.json').write_text(
            json.dumps(dict(loss=0.5, step=99)) + '\n' +
            json.dumps(dict(aAcc=90.0, mIoU=value, step=100)) + '\n')
    return work


#: Vanilla at 10 layers: 10-layer minus 5-layer is +2, +2.5, +1.5.
DEEPER = {0: 72.0, 1: 73.5, 2: 74.0}


def test_fine_tuning_gain_pairs_layer_counts_by_seed(tmp_path, capsys):
    seeded = tmp_path
    for seed, miou in VANILLA.items():
        write_run(seeded, 'vanilla-l5', 'vanilla', 5, miou, 8.0, 20.0, 0.2,
                  step_peak=100.0, seed=seed)
    write_run(seeded, 'fcn-vanilla-l5', 'vanilla', 5, 90.0, 1.0, 1.0, 0.1,
              model_prefix='fcn_r18-d8', step_peak=1.0, seed=0)
    for seed, miou in DEEPER.items():
        write_run(seeded, 'vanilla-l10', 'vanilla', 10, miou, 8.0, 20.0,
                  0.2, step_peak=150.0, seed=seed)
    write_calibration(seeded, 60.25)
    calibrated = calibrations(expand([str(seeded / '*')]), model_name)
    assert calibrated == {'pspnet': 60.25}
    rows, _ = collect([str(seeded / '*')])
    gains = {g['model']: g for g in gain_rows(rows, calibrated)}
    assert gains['fcn']['calibrated'] is None
    pspnet = gains['pspnet']
    assert [e['layers'] for e in pspnet['layers']] == [5, 10]
    shallow, deep = pspnet['layers']
    assert shallow['gain'] == pytest.approx(np.mean(list(VANILLA.values()))
                                            - 60.25)
    assert shallow['over_previous'] is None
    mean, low, high = paired(DEEPER, VANILLA)
    assert deep['over_previous']['mean'] == pytest.approx(mean)
    assert deep['over_previous']['low'] == pytest.approx(low, rel=1e-3)
    assert deep['over_previous']['high'] == pytest.approx(high, rel=1e-3)
    table = gain_table(list(gains.values()))
    assert f'| pspnet | 60.25 | 10 | {np.mean(list(DEEPER.values())):.2f}' \
        in table
    assert compare.main([str(seeded / '*')]) == 0
    assert 'Fine-tuning gain' in capsys.readouterr().out


def test_a_calibration_without_a_validation_has_no_mIoU(tmp_path):
    work = tmp_path / 'fcn_r18-d8_calib_shapes-target-128x128'
    (work / '20260101_000000' / 'vis_data').mkdir(parents=True)
    (work / '20260101_000000' / 'vis_data' / 'scalars.json').write_text(
        json.dumps(dict(loss=0.5, step=1)) + '\n')
    assert calibrated_miou(str(work)) is None
    assert calibrated_miou(str(tmp_path / 'missing')) is None
