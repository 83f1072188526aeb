"""Collects finished runs into one table, with ratios to vanilla, and a plot.

A run is a work dir holding ``test_results.json`` (written by
``tools/test.py``). Everything else is reported by name and skipped.
"""
import csv
import glob
import json
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence, Tuple

from .protocol import MODEL_CONFIGS

COLUMNS = [
    'model', 'method', 'setting', 'layers', 'mIoU', 'mAcc',
    'analytical_peak_mb', 'analytical_mean_mb', 'measured_peak_mb',
    'measured_mean_mb', 'step_time_s', 'analytical_ratio', 'measured_ratio',
    'time_ratio', 'work_dir'
]
_PREFIXES = {prefix: model for model, (_, prefix) in MODEL_CONFIGS.items()}


def expand(paths: Sequence[str]) -> List[str]:
    """Work dirs from paths and glob patterns, sorted, without duplicates."""
    found = []
    for path in paths:
        matches = sorted(glob.glob(path)) if glob.has_magic(path) else [path]
        found += [m for m in matches if m not in found]
    return found


def model_name(config: str) -> str:
    """Protocol model name of a config path (its prefix if not protocol)."""
    base = osp.basename(config)
    for prefix, model in _PREFIXES.items():
        if base.startswith(prefix + '_'):
            return model
    return base.split('_')[0]


_LAYERS_TAG = re.compile(r'-l(\d+)_')


def layer_count(config: str, finetune: dict) -> Optional[int]:
    """Fine-tuned layer count: the config's ``-lN_`` tag, else the plan's."""
    match = _LAYERS_TAG.search(osp.basename(config))
    return int(match.group(1)) if match else finetune.get('num_layers')


def _setting(finetune: dict) -> str:
    method = finetune.get('method')
    if method in ('hosvd', 'hosvd_subspace') and finetune.get(
            'solver') == 'eigh' and finetune.get('budget_mb') is None:
        return f"eps={finetune.get('eps')}, eigh" + (
            ', fixed' if method == 'hosvd_subspace' else '')
    if method == 'hosvd_subspace':
        if finetune.get('budget_mb') is not None:
            return f"budget={finetune['budget_mb']:g}MB"
        return f"eps={finetune.get('eps')}, fixed"
    if method in ('svd', 'hosvd'):
        return f"eps={finetune.get('eps')}"
    if method == 'gradient_filter':
        radii = finetune.get('radii') or {}
        return 'r=' + '/'.join(str(r) for r in radii.values())
    return ''


def load_run(work_dir: str) -> Tuple[Optional[dict], Optional[str]]:
    """One table row from a work dir, or the reason it is skipped."""
    path = osp.join(work_dir, 'test_results.json')
    if not osp.isdir(work_dir):
        return None, 'not a directory'
    if not osp.isfile(path):
        return None, 'no test_results.json (not tested, or not a run)'
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError) as error:
        return None, f'unreadable test_results.json ({error})'
    metrics = record.get('metrics') or {}
    missing = [k for k in ('mIoU', 'mAcc') if k not in metrics]
    if missing:
        return None, f'test_results.json lacks {missing}'
    finetune = record.get('finetune')
    if not finetune:
        return None, 'not a fine-tuning run (no CompressConvHook plan)'
    memory = record.get('activation_memory')
    if not memory:
        return None, 'no activation memory recorded (no ActivationMemoryHook)'
    row = dict(
        model=model_name(record.get('config', work_dir)),
        method=finetune['method'] + ('-lean' if finetune.get('lean') else ''),
        setting=_setting(finetune),
        layers=layer_count(record.get('config', ''), finetune),
        mIoU=metrics['mIoU'],
        mAcc=metrics['mAcc'],
        analytical_peak_mb=memory['analytical_mb']['peak'],
        analytical_mean_mb=memory['analytical_mb']['mean'],
        measured_peak_mb=memory['measured_mb']['peak'],
        measured_mean_mb=memory['measured_mb']['mean'],
        step_time_s=record.get('step_time_s'),
        work_dir=work_dir)
    return row, None


def _ratio(value, base):
    if value is None or not base:
        return None
    return value / base


def add_ratios(rows: List[dict]) -> None:
    """Ratios of memory and step time to vanilla of the same model/layers."""
    vanilla: Dict[tuple, dict] = {(r['model'], r['layers']): r
                                  for r in rows if r['method'] == 'vanilla'}
    for row in rows:
        base = vanilla.get((row['model'], row['layers']))
        if base is None:
            row.update(analytical_ratio=None, measured_ratio=None,
                       time_ratio=None)
            continue
        row['analytical_ratio'] = _ratio(row['analytical_peak_mb'],
                                         base['analytical_peak_mb'])
        row['measured_ratio'] = _ratio(row['measured_peak_mb'],
                                       base['measured_peak_mb'])
        row['time_ratio'] = _ratio(row['step_time_s'], base['step_time_s'])


def collect(paths: Sequence[str]) -> Tuple[List[dict], List[Tuple[str, str]]]:
    """Rows of every run found, and the (path, reason) of what was skipped."""
    rows, skipped = [], []
    for work_dir in expand(paths):
        row, reason = load_run(work_dir)
        if row is None:
            skipped.append((work_dir, reason))
        else:
            rows.append(row)
    add_ratios(rows)
    order = {
        'vanilla': 0,
        'gradient_filter': 1,
        'svd': 2,
        'hosvd': 3,
        'hosvd_subspace': 4
    }
    rows.sort(key=lambda r: (r['model'], r['layers'] or 0,
                             order.get(r['method'].split('-')[0], 9),
                             r['method'], r['setting']))
    return rows, skipped


def _fmt(value, digits=2):
    if value is None:
        return '-'
    if isinstance(value, float):
        return f'{value:.{digits}f}'
    return str(value)


def markdown_table(rows: List[dict]) -> str:
    """The comparison as a Markdown table."""
    header = ('| model | method | setting | layers | mIoU | mAcc | '
              'analytical peak / mean (MB) | measured peak / mean (MB) | '
              'step (s) | analytical / vanilla | measured / vanilla | '
              'time / vanilla |')
    lines = [header, '|---' * 12 + '|']
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['method']} | {r['setting']} | "
            f"{r['layers']} | {_fmt(r['mIoU'])} | {_fmt(r['mAcc'])} | "
            f"{_fmt(r['analytical_peak_mb'], 3)} / "
            f"{_fmt(r['analytical_mean_mb'], 3)} | "
            f"{_fmt(r['measured_peak_mb'], 2)} / "
            f"{_fmt(r['measured_mean_mb'], 2)} | "
            f"{_fmt(r['step_time_s'], 3)} | {_fmt(r['analytical_ratio'], 3)} "
            f"| {_fmt(r['measured_ratio'], 3)} | {_fmt(r['time_ratio'], 2)} |")
    return '\n'.join(lines)


def write_csv(rows: List[dict], path: str) -> None:
    """Writes the rows with :data:`COLUMNS` as header."""
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k) for k in COLUMNS})


_MARKERS = {
    'vanilla': 'o',
    'gradient_filter': 's',
    'svd': '^',
    'hosvd': 'D',
    'hosvd_subspace': 'P',
    'hosvd-lean': 'X',
}


def plot_pareto(rows: List[dict], path: str) -> None:
    """mIoU against peak analytical activation memory (log scale) to a PNG.

    One marker per method (and setting), one colour per model; the 5- and
    10-layer points of a model and method are joined by a line.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(11, 6))
    models = sorted({r['model'] for r in rows})
    colours = dict(zip(models, plt.cm.tab10.colors))
    series: Dict[tuple, List[dict]] = {}
    for r in rows:
        if r['analytical_peak_mb'] > 0:
            series.setdefault((r['model'], r['method'], r['setting']),
                              []).append(r)
    methods = []
    for (model, method, setting), points in sorted(series.items()):
        points.sort(key=lambda r: r['layers'] or 0)
        marker = _MARKERS.get(method, _MARKERS.get(method.split('-')[0], 'x'))
        filled = setting != 'eps=0.9'
        ax.plot([p['analytical_peak_mb'] for p in points],
                [p['mIoU'] for p in points],
                linestyle='-',
                linewidth=0.8,
                marker=marker,
                markersize=7,
                color=colours[model],
                markerfacecolor=colours[model] if filled else 'white')
        label = f'{method} {setting}' if method in ('hosvd',
                                                      'svd') else method
        if (label, marker, filled) not in methods:
            methods.append((label, marker, filled))
    ax.set_xscale('log')
    ax.set_xlabel('peak activation memory of the fine-tuned convolutions '
                  '(MB, analytical, log scale)')
    ax.set_ylabel('mIoU on the target validation set (%)')
    ax.set_title('Accuracy vs. activation memory (lines join 5 and 10 '
                 'fine-tuned layers)')
    ax.grid(True, which='both', alpha=0.3)
    handles = [
        Line2D([], [], color='grey', marker=m, linestyle='',
               markerfacecolor='grey' if f else 'white', label=lab)
        for lab, m, f in methods
    ] + [
        Line2D([], [], color=colours[m], linewidth=3, label=m)
        for m in models
    ]
    ax.legend(handles=handles, fontsize=8, loc='upper left',
              bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
