"""Runs of one row over several seeds: mean, spread, and paired differences.

A row of the comparison is a model, method (with its setting and
reductions) and layer count; each of its runs has a seed (the
``randomness.seed`` it trained with, kept in its test record).
:func:`pool_seeds` makes one row of the runs of every row, with the mean
and standard deviation of each number over the seeds, and
:func:`add_differences` gives each row its mIoU difference to vanilla with
a 95% interval paired by seed.
"""
import math
import os
import os.path as osp
import pickle
import re
from typing import Dict, List, Optional, Sequence, Tuple

from scipy.stats import t as student_t

from ..reductions.describe import baseline_tag
from .config_drift import trained_config
from .matrix import SEED_DIR

#: Confidence of the intervals.
CONFIDENCE = 0.95
#: Numbers whose spread over seeds the table shows.
SPREAD_KEYS = ('mIoU', 'mAcc')
#: Numbers pooled as the least over the seeds (each already the least over
#: the fine-tuned layers of a run); the other numbers are averaged.
LEAST_KEYS = ('min_rel_change', 'min_change_over_decay', 'min_grad_share')
#: Numbers averaged over the seeds.
AVERAGED_KEYS = ('mIoU', 'mAcc', 'analytical_peak_mb', 'analytical_mean_mb',
                 'measured_peak_mb', 'measured_mean_mb', 'step_peak_mb',
                 'step_time_s')
#: What identifies a row: runs that differ only in their seed pool.
ROW_KEY = ('model', 'method', 'setting', 'reductions', 'layers')


def t_quantile(probability: float, dof: int) -> float:
    """The ``probability`` quantile of Student's t with ``dof`` degrees of
    freedom (4.303 for 0.975 and 2)."""
    return float(student_t.ppf(probability, dof))


def mean_and_std(values: Sequence[float]) -> Tuple[float, Optional[float]]:
    """Mean and sample standard deviation (n - 1); None for one value."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    variance = sum((v - mean)**2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(variance)


def paired_difference(values: Dict, base: Dict) -> Optional[dict]:
    """The mean difference ``values - base`` over the seeds both have, with
    its two-sided Student t interval.

    Args:
        values: Seed -> number of one row.
        base: Seed -> number of the row it is compared with.

    Returns:
        None when no seed is shared; else a dict with ``mean``, ``low`` and
        ``high`` (None with one shared seed: no interval), ``seeds`` (how
        many are shared) and ``contains_zero`` (whether the interval holds
        0; None without an interval).
    """
    shared = [seed for seed in values if seed in base]
    if not shared:
        return None
    differences = [values[seed] - base[seed] for seed in shared]
    mean, std = mean_and_std(differences)
    if std is None:
        return dict(mean=mean, low=None, high=None, seeds=1,
                    contains_zero=None)
    half = t_quantile(0.5 + CONFIDENCE / 2, len(shared) - 1) * std / math.sqrt(
        len(shared))
    low, high = mean - half, mean + half
    return dict(mean=mean, low=low, high=high, seeds=len(shared),
                contains_zero=low <= 0 <= high)


def record_seed(record: dict) -> Optional[int]:
    """The seed a test record's checkpoint was trained with: the record's,
    else (a record written before records kept it) the one in the config
    the checkpoint recorded; None when neither can be read."""
    if record.get('seed') is not None:
        return record['seed']
    checkpoint = record.get('checkpoint')
    if not checkpoint or not osp.isfile(checkpoint):
        return None
    try:
        trained = trained_config(checkpoint)
    except (EOFError, OSError, RuntimeError, pickle.UnpicklingError):
        # not a checkpoint this process loads: the seed stays unknown
        return None
    return None if trained is None else (trained.get('randomness')
                                         or {}).get('seed')


def pool_seeds(runs: List[dict]) -> Tuple[List[dict], List[Tuple[str, str]]]:
    """One row per :data:`ROW_KEY` from the runs of every seed.

    Each row has the mean of :data:`AVERAGED_KEYS` and the least of
    :data:`LEAST_KEYS` over its seeds (None where no seed recorded it);
    ``<key>_std`` for :data:`SPREAD_KEYS` (None with one seed); ``seeds``,
    the sorted seeds; ``seed_mIoU``, seed -> mIoU; and ``work_dir``, its
    runs' work dirs joined by ``;``. A run whose seed is unknown (None)
    makes a row of its own, paired with vanilla under None.

    Args:
        runs: One dict per run, with the keys of :data:`ROW_KEY`, the
            numbers, ``seed`` and ``work_dir``, in the order found.

    Returns:
        The rows, and the (work dir, reason) of each run left out because
        another run of its row has the same seed.
    """
    groups: Dict[tuple, Dict] = {}
    skipped = []
    for run in runs:
        seed = run.get('seed')
        group = groups.setdefault(
            tuple(run.get(k) for k in ROW_KEY) +
            (() if seed is not None else (run['work_dir'], )), {})
        if seed in group:
            skipped.append((run['work_dir'], f'seed {seed} again (also in '
                            f"{group[seed]['work_dir']})"))
            continue
        group[seed] = run
    return [_pooled(list(group.values())) for group in groups.values()
            ], skipped


def _pooled(runs: List[dict]) -> dict:
    runs.sort(key=lambda r: (r.get('seed') is None, r.get('seed') or 0))
    row = {key: runs[0].get(key) for key in ROW_KEY}
    for key in AVERAGED_KEYS + LEAST_KEYS:
        values = [r[key] for r in runs if r.get(key) is not None]
        if not values:
            row[key] = None
        elif key in LEAST_KEYS:
            row[key] = min(values)
        else:
            row[key], std = mean_and_std(values)
            if key in SPREAD_KEYS:
                row[f'{key}_std'] = std
    row['seeds'] = [r.get('seed') for r in runs]
    row['seed_mIoU'] = {r.get('seed'): r['mIoU'] for r in runs}
    row['work_dir'] = ';'.join(r['work_dir'] for r in runs)
    return row


def _baseline_key(row: dict) -> tuple:
    return row['model'], row['layers'], baseline_tag(row.get('reductions'))


def vanilla_baselines(rows: List[dict]) -> Dict[tuple, dict]:
    """The vanilla rows that others are compared with: without reductions
    but the exact ones (frozen prefix, chunked loss, in-place
    concatenation), by (model, layers, those reductions); see
    :func:`baseline_of`."""
    return {_baseline_key(r): r for r in rows
            if r['method'] == 'vanilla'
            and baseline_tag(r.get('reductions')) == (r.get('reductions')
                                                      or '')}


def baseline_of(row: dict, vanilla: Dict[tuple, dict]) -> Optional[dict]:
    """The vanilla row of ``row``'s model and layers that runs the same
    exact reductions (frozen prefix, chunked loss, in-place concatenation)
    and no other
    (:func:`~mmseg_hosvd.reductions.describe.baseline_tag`), or None.

    Args:
        row: A row of :func:`pool_seeds`.
        vanilla: :func:`vanilla_baselines` of the rows.
    """
    return vanilla.get(_baseline_key(row))


def add_differences(rows: List[dict]) -> None:
    """Each row's mIoU difference to its vanilla baseline
    (:func:`baseline_of`), paired by seed (:func:`paired_difference`), as
    ``mIoU_diff``; None for the baseline itself, and where no vanilla row
    shares a seed. A row with a difference also gets ``mIoU_paired``, its
    baseline's mean plus that difference: its mIoU on the baseline's seeds,
    which rows run over different seeds are compared by."""
    vanilla = vanilla_baselines(rows)
    for row in rows:
        base = baseline_of(row, vanilla)
        row['mIoU_diff'] = (None if base is None or base is row else
                            paired_difference(row['seed_mIoU'],
                                              base['seed_mIoU']))
        if row['mIoU_diff'] is not None:
            row['mIoU_paired'] = base['mIoU'] + row['mIoU_diff']['mean']


def seed_dirs(work_dir: str) -> List[str]:
    """The sub-folders ``seed<N>`` of a work dir (runs of other seeds, see
    :func:`~mmseg_hosvd.protocol.matrix.work_dir`), by seed."""
    if not osp.isdir(work_dir):
        return []
    pattern = re.compile(SEED_DIR.format(seed=r'(\d+)'))
    found = []
    for name in os.listdir(work_dir):
        match = pattern.fullmatch(name)
        if match and osp.isdir(osp.join(work_dir, name)):
            found.append((int(match.group(1)), osp.join(work_dir, name)))
    return [path for _, path in sorted(found)]
