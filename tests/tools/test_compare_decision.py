"""compare.py --decision: the set-up to use within each memory budget, read
off real run records."""
import pytest

from mmseg_hosvd.protocol.comparison import collect
from mmseg_hosvd.protocol.decision_table import (
    choose,
    decision_table,
    setup_name,
)
from mmseg_hosvd.protocol.front_panels import (
    front_points,
    plot_front_panels,
)
from tools import compare

from .test_compare import write_run
from .test_compare_seeds import cells, paired

MB1 = dict(accumulate=8, micro_batch=1, amp=None, checkpoint=False,
           frozen_prefix=1, chunked_loss=1)
EXACT = dict(MB1, accumulate=1, micro_batch=8)
VANILLA = {0: 70.0, 1: 71.0, 2: 72.5}


@pytest.fixture
def rows(tmp_path):
    """vanilla 100 MB; accumulation (exact, slower) 45 MB on seed 0;
    HOSVD 40 MB, -1.33 mIoU; Gradient Filter 30 MB, -10.33; SVD 60 MB,
    -1.0 on one shared seed; a row without a peak; 10 layers without a
    vanilla row."""
    for seed, miou in VANILLA.items():
        write_run(tmp_path, 'vanilla-l5', 'vanilla', 5, miou, 8.0, 20.0,
                  0.2, step_peak=100.0, seed=seed, reductions=EXACT)
        write_run(tmp_path, 'hosvd-l5', 'hosvd', 5,
                  miou - (1.0, 0.5, 2.5)[seed], 0.5, 12.0, 0.22, eps=0.8,
                  step_peak=40.0, seed=seed, reductions=EXACT)
        write_run(tmp_path, 'gf-l5', 'gradient_filter', 5, miou - 10.0 -
                  (0.0, 0.5, 0.5)[seed], 0.6, 15.0, 0.21, radii={'a': 4},
                  step_peak=30.0, seed=seed, reductions=EXACT)
    write_run(tmp_path, 'vanilla-mb1-l5', 'vanilla', 5, VANILLA[0], 1.0,
              2.5, 0.4, step_peak=45.0, seed=0, reductions=MB1)
    write_run(tmp_path, 'svd-l5', 'svd', 5, 69.0, 0.7, 13.0, 0.25, eps=0.8,
              step_peak=60.0, seed=0, reductions=EXACT)
    write_run(tmp_path, 'svd-eps0.6-l5', 'svd', 5, 99.0, 0.7, 13.0, 0.25,
              eps=0.6, seed=0, reductions=EXACT)
    write_run(tmp_path, 'hosvd-l10', 'hosvd', 10, 69.0, 1.0, 14.0, 0.3,
              eps=0.8, step_peak=10.0, seed=0, reductions=EXACT)
    return collect([str(tmp_path / '*')])[0]


@pytest.mark.parametrize('fraction,name', [
    (1.0, 'vanilla'),
    (0.6, 'vanilla +mb1'),  # exact beats SVD's -1.0 at 0.60x
    (0.45, 'vanilla +mb1'),
    (0.44, 'hosvd eps=0.8'),  # -1.33 beats Gradient Filter's -10.33
    (0.3, 'gradient_filter r=4'),
    (0.29, None),
])
def test_the_most_accurate_fitting_row_is_chosen(rows, fraction, name):
    chosen = choose(rows, 'pspnet', 5, fraction)
    assert (chosen and setup_name(chosen)) == name


def test_ties_go_to_the_faster(rows):
    fast = dict(next(r for r in rows if setup_name(r) == 'vanilla +mb1'),
                step_time_s=0.1, setting='fast')
    assert choose(rows + [fast], 'pspnet', 5, 0.5) is fast


def test_exact_comes_first_where_the_seeds_tell_no_difference(rows):
    hosvd = next(r for r in rows if setup_name(r) == 'hosvd eps=0.8')
    # faster, smaller and +0.2 on average, but its interval holds 0
    noisy = dict(hosvd, method='quantized', setting='2 bits',
                 step_peak_mb=30.0, step_time_s=0.02,
                 mIoU_diff=dict(hosvd['mIoU_diff'], mean=0.2,
                                contains_zero=True))
    assert setup_name(choose(rows + [noisy], 'pspnet', 5,
                             0.5)) == 'vanilla +mb1'
    assert choose(rows + [noisy], 'pspnet', 5, 0.4) is noisy
    # a difference the seeds show counts
    better = dict(noisy, mIoU_diff=dict(noisy['mIoU_diff'],
                                        contains_zero=False))
    assert choose(rows + [better], 'pspnet', 5, 0.5) is better


def table_cells(rows, budgets):
    """The decision table's cells, and the lines after it."""
    table, _, after = decision_table(rows, budgets).partition('\n\n')
    return cells(table), after


def test_the_table_has_a_row_per_vanilla_baseline(rows):
    table, after = table_cells(rows, [1.0, 0.44, 0.2])
    assert [(c['model'], c['layers']) for c in table] == [('pspnet', '5')]
    assert table[0]['within 1.00x'] == ('`vanilla`: vanilla, peak 1.00x, '
                                        'time 1.00x')
    mean, low, high = paired({0: -1.0, 1: -0.5, 2: -2.5}, {0: 0, 1: 0, 2: 0})
    assert table[0]['within 0.44x'] == (
        f'`hosvd eps=0.8`: {mean:+.2f} [{low:+.2f}, {high:+.2f}] ~, peak '
        '0.40x, time 1.10x')
    assert table[0]['within 0.20x'] == '-'
    assert after == ('Not placed, no vanilla row with a whole-step peak: '
                     'pspnet at 10 layers.')


def test_a_model_whose_vanilla_has_no_peak_is_named(rows):
    """Its rows cannot be placed on a budget; the table says so instead of
    leaving the model out."""
    without_peak = [dict(r, step_peak_mb=None) if r['model'] == 'pspnet'
                    and r['layers'] == 5 and r['method'] == 'vanilla'
                    else r for r in rows]
    table, after = table_cells(without_peak, [1.0])
    assert table == []
    assert after == ('Not placed, no vanilla row with a whole-step peak: '
                     'pspnet at 5 layers, pspnet at 10 layers.')


def test_command_prints_the_decision_and_refuses_bad_budgets(
        rows, tmp_path, capsys):
    root = rows[0]['work_dir'].split(';')[0].rsplit('/', 2)[0]
    assert compare.main([root + '/*', '--decision']) == 0
    out = capsys.readouterr().out
    assert 'Set-up by memory budget' in out
    assert '| within 1.00x | within 0.90x |' in out
    with pytest.raises(SystemExit):
        compare.main([root + '/*', '--decision', '1.5'])
    assert ("--decision: a budget is a fraction of vanilla's whole-step "
            'peak in (0, 1], got 1.5') in capsys.readouterr().err


@pytest.mark.parametrize('reductions, name', [
    ('prefix1-chunkloss1', 'quantized bits=2'),
    ('prefix1-chunkloss1-concat', 'quantized bits=2 +concat'),
    ('mb1-prefix1-chunkloss1-concat', 'quantized bits=2 +mb1-concat'),
])
def test_a_set_up_names_the_reductions_beyond_the_protocol_s(reductions,
                                                              name):
    row = dict(method='quantized', setting='bits=2', reductions=reductions)
    assert setup_name(row) == name


def test_rows_of_two_vanilla_baselines_are_placed_on_one_scale(
        rows, tmp_path):
    """A vanilla row with the in-place concatenation (90 MB) and a 2-bit
    row compared with it (38 MB, -0.5 mIoU) beside the plain rows: both
    are placed against the plain vanilla's 100 MB, not their own 90."""
    root = tmp_path / 'concat'
    concat = dict(EXACT, concat=True)
    for seed, miou in VANILLA.items():
        write_run(root, 'vanilla-l5', 'vanilla', 5, miou, 8.0, 20.0, 0.18,
                  step_peak=90.0, seed=seed, reductions=concat)
        write_run(root, 'qact2-l5', 'quantized', 5,
                  miou - (0.5, 0.6, 0.4)[seed], 0.5, 12.0, 0.2, bits=2,
                  group_size=64, step_peak=38.0, seed=seed, reductions=concat)
    both = collect([str(tmp_path / '*'), str(root / '*')])[0]
    assert setup_name(choose(both, 'pspnet', 5, 0.9)) == 'vanilla +concat'
    two_bits = 'quantized 2 bits, groups of 64 +concat'
    assert setup_name(choose(both, 'pspnet', 5, 0.38)) == two_bits
    table, _ = table_cells(both, [0.9, 0.38])
    assert [(c['model'], c['layers']) for c in table] == [('pspnet', '5')]
    assert table[0]['within 0.90x'] == ('`vanilla +concat`: vanilla, peak '
                                        '0.90x, time 0.90x')
    assert table[0]['within 0.38x'].endswith('peak 0.38x, time 1.00x')
    points = {p['name']: p['ratio']
              for p in front_points(both)[('pspnet', 5)]}
    assert points['vanilla +concat'] == pytest.approx(0.9)
    assert points[two_bits] == pytest.approx(0.38)
    assert points['vanilla'] == 1.0


def test_times_are_against_a_timed_vanilla_where_the_reference_has_none(
        tmp_path):
    """The largest-peak vanilla (100 MB) has no step time, the vanilla with
    the in-place concatenation (90 MB) has: the cells give times against
    it, and the faster of two rows alike in all else is chosen."""
    concat = dict(EXACT, concat=True)
    for seed, miou in VANILLA.items():
        write_run(tmp_path / 'plain', 'vanilla-l5', 'vanilla', 5, miou, 8.0,
                  20.0, None, step_peak=100.0, seed=seed, reductions=EXACT)
        write_run(tmp_path / 'concat', 'vanilla-l5', 'vanilla', 5, miou,
                  8.0, 20.0, 0.2, step_peak=90.0, seed=seed,
                  reductions=concat)
        for name, step in (('qact2-l5', 0.3), ('qact2-fast-l5', 0.1)):
            write_run(tmp_path / 'concat', name, 'quantized', 5,
                      miou - (0.5, 0.6, 0.4)[seed], 0.5, 12.0, step,
                      bits=2, group_size=64 if 'fast' in name else 32,
                      step_peak=38.0, seed=seed, reductions=concat)
    rows = collect([str(tmp_path / '*' / '*')])[0]
    chosen = choose(rows, 'pspnet', 5, 0.4)
    assert chosen['step_time_s'] == pytest.approx(0.1)
    table, _ = table_cells(rows, [0.9, 0.4])
    assert table[0]['within 0.90x'] == ('`vanilla +concat`: vanilla, peak '
                                        '0.90x, time 1.00x')
    assert table[0]['within 0.40x'].endswith('peak 0.38x, time 0.50x')


def test_rows_of_an_unknown_layer_count_sort_beside_known_ones(
        rows, tmp_path):
    """A run whose config has no -lN tag and whose plan no layer count
    (layers None) beside 5- and 10-layer rows of the same model: the table
    and the panels sort them (None first) instead of failing to compare
    None with an int."""
    root = tmp_path / 'untagged'
    write_run(root, 'vanilla', 'vanilla', None, 70.0, 8.0, 20.0, 0.2,
              step_peak=100.0, seed=0, reductions=EXACT)
    write_run(root, 'hosvd', 'hosvd', None, 69.0, 0.5, 12.0, 0.22, eps=0.8,
              step_peak=40.0, seed=0, reductions=EXACT)
    write_run(root, 'hosvd-mine', 'hosvd', None, 69.0, 0.5, 12.0, 0.22,
              eps=0.8, step_peak=40.0, seed=0, reductions=EXACT,
              model_prefix='fcn_r18-d8')
    both = collect([str(tmp_path / '*'), str(root / '*')])[0]
    table, after = table_cells(both, [1.0])
    assert [(c['model'], c['layers']) for c in table] == [('pspnet', 'None'),
                                                           ('pspnet', '5')]
    assert after == ('Not placed, no vanilla row with a whole-step peak: '
                     'fcn at an unknown layer count, pspnet at 10 layers.')
    assert set(front_points(both)) == {('pspnet', None), ('pspnet', 5)}
    plot_front_panels(both, str(tmp_path / 'front.png'))
    assert (tmp_path / 'front.png').stat().st_size > 0
