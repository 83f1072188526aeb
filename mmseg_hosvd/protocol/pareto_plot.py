"""The accuracy-memory plot of a comparison: one point per row, its mean
mIoU over the seeds with the standard deviation as error bar."""
from typing import Dict, List

from .comparison import LEAN_SUFFIX, base_method
from .pareto_front import FRONT_MEMORY

#: Marker of a method this process has not registered.
UNKNOWN_MARKER = 'x'
#: Markers of the peers' rows, by their first reduction (accumulation,
#: checkpointing, mixed precision, the non-compression reductions).
REDUCTION_MARKERS = (('mb', '<'), ('ckpt', 'P'), ('amp', 'd'),
                     ('prefix', '>'), ('chunkloss', '>'))


def marker(row_method: str, reductions: str = '') -> str:
    """The plot marker of a row: its reduction's, else its method's (the
    lean marker when lean)."""
    for prefix, reduction_marker in REDUCTION_MARKERS:
        if reductions.startswith(prefix):
            return reduction_marker
    method = base_method(row_method)
    if method is None:
        return UNKNOWN_MARKER
    return (method.lean_marker
            if row_method.endswith(LEAN_SUFFIX) else method.marker)


#: What the x axis of each plot shows.
X_AXES = {
    'analytical_peak_mb': ('peak activation memory of the fine-tuned '
                           'convolutions (MB, analytical, log scale)',
                           'activation memory'),
    'step_peak_mb': ("whole-step peak memory (MB over the step's start, "
                     'allocator, log scale)', 'whole-step peak memory'),
}


def plot_pareto(rows: List[dict], path: str,
                x: str = 'analytical_peak_mb') -> None:
    """mIoU against a memory number (log scale) to a PNG.

    One marker per method (and setting), one colour per model; the 5- and
    10-layer points of a model and method are joined by a line. A row of
    several seeds is drawn at its mean mIoU with an error bar of one
    standard deviation over the seeds. Against the whole-step peak, the
    rows on their model's front (``front``, see
    :func:`~mmseg_hosvd.protocol.pareto_front.mark_front`) are ringed.
    Rows without the number (runs that did not record it) are left out.

    Args:
        rows: Rows of :func:`~mmseg_hosvd.protocol.comparison.collect`.
        path: The PNG to write.
        x: The memory column, a key of :data:`X_AXES`.
    """
    x_label, title = X_AXES[x]
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(11, 6))
    models = sorted({r['model'] for r in rows})
    # the first ten models get tab10's colours, the rest matplotlib's cycle
    colours = dict(zip(models, plt.cm.tab10.colors, strict=False))
    series: Dict[tuple, List[dict]] = {}
    for r in rows:
        if (r.get(x) or 0) > 0:
            series.setdefault((r['model'], r['method'], r['setting'],
                               r.get('reductions') or ''), []).append(r)
    methods = []
    for (model, method, setting, reductions), points in sorted(
            series.items()):
        points.sort(key=lambda r: r['layers'] or 0)
        point_marker = marker(method, reductions)
        filled = setting != 'eps=0.9'
        ax.errorbar([p[x] for p in points], [p['mIoU'] for p in points],
                    yerr=[p.get('mIoU_std') or 0.0 for p in points],
                    linestyle='-',
                    linewidth=0.8,
                    marker=point_marker,
                    markersize=7,
                    capsize=3,
                    elinewidth=0.8,
                    color=colours[model],
                    markerfacecolor=colours[model] if filled else 'white')
        label = f'{method} {setting}' if setting.startswith(
            'eps=') else method
        if reductions:
            label = f'{label} + {reductions}'
        if (label, point_marker, filled) not in methods:
            methods.append((label, point_marker, filled))
    front = [r for r in rows if x == FRONT_MEMORY and r.get('front')]
    if front:
        ax.scatter([r[x] for r in front], [r['mIoU'] for r in front], s=260,
                   facecolors='none', edgecolors='black', linewidths=1.2,
                   zorder=3)
    ax.set_xscale('log')
    ax.set_xlabel(x_label)
    ax.set_ylabel('mIoU on the target validation set (%)')
    ax.set_title(f'Accuracy vs. {title} (lines join 5 and 10 fine-tuned '
                 'layers; bars: std over seeds)')
    ax.grid(True, which='both', alpha=0.3)
    handles = [
        Line2D([], [], color='grey', marker=m, linestyle='',
               markerfacecolor='grey' if f else 'white', label=lab)
        for lab, m, f in methods
    ] + [
        Line2D([], [], color=colours[m], linewidth=3, label=m)
        for m in models
    ]
    if front:
        handles.append(
            Line2D([], [], color='black', marker='o', markersize=12,
                   markerfacecolor='none', linestyle='',
                   label='on its model\'s front'))
    ax.legend(handles=handles, fontsize=8, loc='upper left',
              bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
