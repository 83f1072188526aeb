"""compare.py --front-plot: one panel per model, relative to its vanilla
row, read off real run records."""
import matplotlib.image
import pytest

from mmseg_hosvd.protocol.front_panels import (
    front_points,
    panel_title,
    plot_front_panels,
)
from tools import compare

from .test_compare_decision import rows  # noqa: F401  (the fixture)
from .test_compare_seeds import paired


def by_name(points):
    return {p['name']: p for p in points}


def test_each_row_is_placed_against_its_vanilla(rows):  # noqa: F811
    panels = front_points(rows)
    # hosvd-l10 has no vanilla row at 10 layers; svd-eps0.6 has no peak
    assert list(panels) == [('pspnet', 5)]
    points = by_name(panels[('pspnet', 5)])
    assert sorted(points) == ['gradient_filter r=4', 'hosvd eps=0.8',
                              'svd eps=0.8', 'vanilla', 'vanilla +mb1']
    assert points['vanilla'] == dict(name='vanilla', ratio=1.0, diff=0.0,
                                     low=None, high=None, front=False)
    mean, low, high = paired({0: -1.0, 1: -0.5, 2: -2.5}, {0: 0, 1: 0, 2: 0})
    hosvd = points['hosvd eps=0.8']
    assert (hosvd['ratio'], hosvd['diff'], hosvd['low'],
            hosvd['high']) == pytest.approx((0.4, mean, low, high), rel=1e-3)
    # one seed shared with vanilla: a difference without an interval
    assert points['svd eps=0.8']['low'] is None
    assert points['svd eps=0.8']['diff'] == pytest.approx(-1.0, rel=1e-3)
    assert [p['ratio'] for p in panels[('pspnet', 5)]] == sorted(
        p['ratio'] for p in panels[('pspnet', 5)])


def test_the_front_is_the_comparison_s_at_one_layer_count(
        rows):  # noqa: F811
    points = by_name(front_points(rows)[('pspnet', 5)])
    assert {n for n, p in points.items() if p['front']} == {
        'vanilla +mb1', 'hosvd eps=0.8', 'gradient_filter r=4'}
    # the comparison's column counts the 10-layer row (10 MB, 69.0 mIoU),
    # which dominates Gradient Filter; the 5-layer panel does not
    five = [r for r in rows if r['layers'] == 5]
    front = {r['work_dir'].split(';')[0].split('/')[-2]: r['front']
             for r in five if r.get('step_peak_ratio')}
    assert front['gf-l5'] is False
    assert front['vanilla-mb1-l5'] and front['hosvd-l5']


def test_command_writes_the_panels(rows, tmp_path, capsys):  # noqa: F811
    root = rows[0]['work_dir'].split(';')[0].rsplit('/', 2)[0]
    path = tmp_path / 'out' / 'front.png'
    assert compare.main([root + '/*', '--front-plot', str(path)]) == 0
    height, width, _ = matplotlib.image.imread(str(path)).shape
    assert width > 300 and height > 300
    # the 10-layer row has no vanilla to be placed against: said, not lost
    assert ('--front-plot: no panel for pspnet at 10 layers (no vanilla row '
            'with a whole-step peak)') in capsys.readouterr().err


def test_rows_without_a_vanilla_to_compare_with_are_refused(
        rows, tmp_path, capsys):  # noqa: F811
    alone = [r for r in rows if r['layers'] == 10]
    with pytest.raises(ValueError, match='no row has a whole-step peak and '
                       'a vanilla row'):
        plot_front_panels(alone, str(tmp_path / 'none.png'))
    root = rows[0]['work_dir'].split(';')[0].rsplit('/', 2)[0]
    assert compare.main([root + '/hosvd-l10', '--front-plot',
                         str(tmp_path / 'none.png')]) == 1
    assert '--front-plot: no row has a whole-step peak' in (
        capsys.readouterr().err)


def test_a_panel_title_says_an_unknown_layer_count():
    assert panel_title(('pspnet', 5)) == 'pspnet at 5 layers'
    assert panel_title(('fcn', None)) == 'fcn at an unknown layer count'
