"""The front per model, one panel each: what each set-up costs in mIoU
against vanilla (paired by seed, with its interval) at what fraction of
vanilla's whole-step peak.

Every model's rows share one plot in :mod:`.pareto_plot`; with a dozen
set-ups on eight models their markers cannot be told apart. Here each
model and layer count gets its own panel, on axes relative to its
reference vanilla row (:func:`~.decision_table.reference_vanillas`, the
scale of the decision table too), and only the panel's rows on its front
(no other row of the panel needs no more memory and loses no more mIoU,
while better in one of the two) are numbered, joined and named under the
panel; the others are grey dots. Within one panel this is the
comparison's ``front`` column restricted to one layer count.
"""
import math
import textwrap
from typing import Dict, List, Optional, Tuple

from .comparison_table import against
from .decision_table import (
    by_model_and_layers,
    layers_phrase,
    reference_vanillas,
    setup_name,
)
from .pareto_front import dominates_at
from .seed_statistics import baseline_of, vanilla_baselines

#: Panels per row of the figure.
COLUMNS = 4
#: Characters of a front row's line under its panel.
NAME_WIDTH = 70


def front_points(rows: List[dict]) -> Dict[Tuple[str, int], List[dict]]:
    """The points of each panel, by (model, layers), for the model and
    layer counts with a reference vanilla row
    (:func:`~.decision_table.reference_vanillas`).

    Each point has ``name`` (:func:`setup_name`), ``ratio`` (whole-step
    peak against the reference's), ``diff`` (mean mIoU difference to
    vanilla, paired by seed; 0 for vanilla), ``low`` and ``high`` (its 95%
    interval, None with one shared seed) and ``front`` (whether no other
    point of the panel dominates it). A row without a whole-step peak or
    without a seed shared with vanilla is left out. Points are sorted by
    ratio.

    Args:
        rows: Rows of :func:`~mmseg_hosvd.protocol.comparison.collect`.
    """
    vanilla = vanilla_baselines(rows)
    references = reference_vanillas(rows)
    panels: Dict[Tuple[str, int], List[dict]] = {}
    for row in rows:
        reference = references.get((row['model'], row['layers']))
        ratio = reference and against(row, reference, 'step_peak_mb')
        diff = row.get('mIoU_diff')
        if baseline_of(row, vanilla) is row:
            diff = dict(mean=0.0, low=None, high=None)
        if ratio is None or diff is None:
            continue
        panels.setdefault((row['model'], row['layers']), []).append(dict(
            name=setup_name(row), ratio=ratio, diff=diff['mean'],
            low=diff['low'], high=diff['high']))
    for points in panels.values():
        points.sort(key=lambda p: (p['ratio'], -p['diff']))
        for p in points:
            p['front'] = not any(
                dominates_at(q['ratio'], q['diff'], p['ratio'], p['diff'])
                for q in points)
    return panels


def plot_front_panels(rows: List[dict], path: str) -> None:
    """One panel per model and layer count to a PNG: mIoU difference to
    vanilla (error bars: the 95% interval) against the whole-step peak as
    a fraction of vanilla's; the front's rows black, numbered, joined as a
    staircase and named under the panel, the others grey.

    Args:
        rows: Rows of :func:`~mmseg_hosvd.protocol.comparison.collect`.
        path: The PNG to write.

    Raises:
        ValueError: When no row has both a whole-step peak and a vanilla
            row to compare with.
    """
    panels = front_points(rows)
    if not panels:
        raise ValueError('no row has a whole-step peak and a vanilla row '
                         'of its model and layer count to compare with')
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    keys = sorted(panels, key=by_model_and_layers)
    columns = min(COLUMNS, len(keys))
    lines = math.ceil(len(keys) / columns)
    fig, axes = plt.subplots(lines, columns, figsize=(4.4 * columns,
                                                     4.6 * lines),
                             squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=False):
        _draw_panel(ax, key, panels[key])
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    fig.supxlabel("whole-step peak / the panel's vanilla's (its largest)")
    fig.supylabel('mIoU - vanilla (paired by seed; bars: 95% interval)')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _draw_panel(ax, key: Tuple[str, int], points: List[dict]) -> None:
    front = [p for p in points if p['front']]
    for chosen, colour, size in (([p for p in points if not p['front']],
                                  '#aaaaaa', 3), (front, 'black', 5)):
        if chosen:
            ax.errorbar([p['ratio'] for p in chosen],
                        [p['diff'] for p in chosen],
                        yerr=_error_bars(chosen), linestyle='', marker='o',
                        markersize=size, color=colour, elinewidth=0.8,
                        capsize=2)
    ax.step([p['ratio'] for p in front], [p['diff'] for p in front],
            where='post', color='black', linewidth=0.8)
    names = []
    for number, p in enumerate(front, 1):
        ax.annotate(str(number), (p['ratio'], p['diff']), fontsize=8,
                    xytext=(3, 3), textcoords='offset points')
        names.append(textwrap.shorten(
            f"{number}: {p['name']} ({p['ratio']:.2f}x, "
            f"{p['diff']:+.2f})", NAME_WIDTH, placeholder='...'))
    ax.text(0.0, -0.14, '\n'.join(names), transform=ax.transAxes,
            fontsize=7, va='top', family='monospace')
    ax.axhline(0.0, color='#cccccc', linewidth=0.6, zorder=1)
    ax.set_xlim(0.0, max(1.05, max(p['ratio'] for p in points) * 1.05))
    ax.set_title(panel_title(key), fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(True, alpha=0.25)


def panel_title(key: Tuple[str, Optional[int]]) -> str:
    """A panel's title.

    Args:
        key: The panel's model and layer count (None where unknown).

    Returns:
        E.g. 'pspnet at 5 layers', or 'pspnet at an unknown layer count'.
    """
    return f'{key[0]} {layers_phrase(key[1])}'


def _error_bars(points: List[dict]) -> List[List[float]]:
    """Distances from each mean down and up to its interval (0 without)."""
    return [[p['diff'] - p['low'] if p['low'] is not None else 0.0
             for p in points],
            [p['high'] - p['diff'] if p['high'] is not None else 0.0
             for p in points]]
