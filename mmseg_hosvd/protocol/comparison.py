"""Collects finished runs into one table, with ratios to vanilla, and a plot.

A run is a work dir holding ``test_results.json`` (written by
``tools/test.py``); the runs of other seeds in its ``seed<N>`` sub-folders
are found with it. The runs of a row (model, method and setting,
reductions, layers) over its seeds make one row: the mean and spread over
the seeds, the mIoU difference to vanilla with a 95% interval paired by
seed (:mod:`.seed_statistics`), and whether the row is on its model's
front of mIoU against the whole-step peak (:mod:`.pareto_front`).
Everything else is reported by name and skipped.
"""
import glob
import json
import os.path as osp
import re
from typing import List, Optional, Sequence, Tuple

from ..methods import FinetuneMethod, get_method
from ..reductions.describe import reductions_tag
from .comparison_table import COLUMNS, against, markdown_table, write_csv
from .matrix import MODEL_CONFIGS
from .pareto_front import mark_front
from .seed_statistics import (
    add_differences,
    baseline_of,
    pool_seeds,
    record_seed,
    seed_dirs,
    vanilla_baselines,
)
from .start_groups import separate_starts, start_digest

#: Suffix of a lean-region run's method in the table.
LEAN_SUFFIX = '-lean'
#: Row order of a method this process has not registered.
UNKNOWN_ORDER = 99

__all__ = [
    'COLUMNS', 'LEAN_SUFFIX', 'UNKNOWN_ORDER', 'add_ratios', 'base_method',
    'collect', 'expand', 'layer_count', 'load_run', 'markdown_table',
    'model_name', 'setting_label', 'write_csv'
]
_PREFIXES = {prefix: model for model, (_, prefix) in MODEL_CONFIGS.items()}


def expand(paths: Sequence[str]) -> List[str]:
    """Work dirs from paths and glob patterns, sorted, without duplicates,
    each followed by its ``seed<N>`` sub-folders."""
    found = []
    for path in paths:
        matches = sorted(glob.glob(path)) if glob.has_magic(path) else [path]
        for match in matches:
            found += [m for m in [match] + seed_dirs(match) if m not in found]
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


def _method(name: Optional[str]) -> Optional[FinetuneMethod]:
    """The registered method, or None for one this process does not know."""
    try:
        return get_method(name)
    except ValueError:
        return None


def setting_label(finetune: dict) -> str:
    """The setting of a run as its method labels it ('' if unknown), the
    bits of a lean region's coded LayerNorm/GELU inputs, and whether its
    classifier stores its whole input."""
    method = _method(finetune.get('method'))
    parts = [method.label(finetune) if method is not None else '']
    if finetune.get('lean_bits'):
        parts.append(f"lean_bits={finetune['lean_bits']}")
    lean_eps = finetune.get('lean_eps') or {}
    if finetune.get('lean') and 'classifier' in lean_eps \
            and lean_eps['classifier'] is None:
        parts.append('classifier whole')
    return ', '.join(filter(None, parts))


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
    change = record.get('weight_change') or {}
    row = dict(
        model=model_name(record.get('config', work_dir)),
        seed=record_seed(record),
        method=finetune['method'] + (LEAN_SUFFIX
                                     if finetune.get('lean') else ''),
        setting=setting_label(finetune),
        reductions=reductions_tag(record.get('reductions')),
        layers=layer_count(record.get('config', ''), finetune),
        mIoU=metrics['mIoU'],
        mAcc=metrics['mAcc'],
        analytical_peak_mb=memory['analytical_mb']['peak'],
        analytical_mean_mb=memory['analytical_mb']['mean'],
        measured_peak_mb=memory['measured_mb']['peak'],
        measured_mean_mb=memory['measured_mb']['mean'],
        step_peak_mb=(record.get('step_peak_memory')
                      or {}).get('peak_increment_mb'),
        step_time_s=record.get('step_time_s'),
        min_rel_change=change.get('min_relative_change'),
        min_change_over_decay=change.get('min_change_over_decay'),
        min_grad_share=change.get('min_grad_share'),
        start=start_digest(record),
        work_dir=work_dir)
    return row, None


def add_ratios(rows: List[dict]) -> None:
    """Ratios of memory and step time to each row's vanilla baseline: the
    same model and layers with the same exact reductions and no other
    (:func:`~.seed_statistics.baseline_of`)."""
    vanilla = vanilla_baselines(rows)
    for row in rows:
        base = baseline_of(row, vanilla)
        if base is None:
            row.update(analytical_ratio=None, measured_ratio=None,
                       step_peak_ratio=None, time_ratio=None)
            continue
        row['analytical_ratio'] = against(row, base, 'analytical_peak_mb')
        row['measured_ratio'] = against(row, base, 'measured_peak_mb')
        row['step_peak_ratio'] = against(row, base, 'step_peak_mb')
        row['time_ratio'] = against(row, base, 'step_time_s')


def collect(paths: Sequence[str]) -> Tuple[List[dict], List[Tuple[str, str]]]:
    """Rows of every run found, pooled over seeds, and the (path, reason)
    of what was skipped.

    A work dir that is no run but holds runs of seeds
    (:func:`~mmseg_hosvd.protocol.seed_statistics.seed_dirs`) is not
    reported. Each row has the keys of :func:`load_run` (numbers averaged
    over the seeds, see
    :func:`~mmseg_hosvd.protocol.seed_statistics.pool_seeds`), the ratios
    of :func:`add_ratios`, ``mIoU_diff`` (see
    :func:`~mmseg_hosvd.protocol.seed_statistics.add_differences`) and
    ``front`` (see :func:`~mmseg_hosvd.protocol.pareto_front.mark_front`).
    """
    runs, skipped = [], []
    for work_dir in expand(paths):
        row, reason = load_run(work_dir)
        if row is not None:
            runs.append(row)
        elif not seed_dirs(work_dir):
            skipped.append((work_dir, reason))
    separate_starts(runs)
    rows, repeated = pool_seeds(runs)
    skipped += repeated
    add_ratios(rows)
    add_differences(rows)
    mark_front(rows)
    rows.sort(key=lambda r: (r['model'], r['layers'] or 0,
                             _order(r['method']), r['method'], r['setting'],
                             r.get('reductions') or ''))
    return rows, skipped


def base_method(row_method: str) -> Optional[FinetuneMethod]:
    """The registered method of a row (its lean variant too), or None."""
    return _method(row_method[:-len(LEAN_SUFFIX)] if row_method.endswith(
        LEAN_SUFFIX) else row_method)


def _order(row_method: str) -> int:
    method = base_method(row_method)
    return method.order if method is not None else UNKNOWN_ORDER
