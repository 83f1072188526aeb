"""compare.py's baselines: each row against vanilla with the same exact
reductions."""
import pytest

from mmseg_hosvd.protocol.comparison import collect
from mmseg_hosvd.reductions.describe import baseline_tag

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


@pytest.mark.parametrize('tag, baseline', [
    ('', ''), (None, ''), ('amp', ''), ('prefix1-chunkloss1',
                                        'prefix1-chunkloss1'),
    ('mb1-ckpt-amp-prefix2-chunkloss1', 'prefix2-chunkloss1'),
    ('mb4-chunkloss2', 'chunkloss2'),
])
def test_the_baseline_keeps_only_the_prefix_and_the_chunked_loss(tag,
                                                                  baseline):
    assert baseline_tag(tag) == baseline

