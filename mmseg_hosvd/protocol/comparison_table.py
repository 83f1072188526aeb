"""The comparison's rows as a Markdown table and as CSV.

A row pooled over several seeds shows its mean mIoU and mAcc with their
standard deviation over the seeds, and its mIoU difference to vanilla with
a 95% interval paired by seed, marked ``~`` where the interval holds 0.
The seed and interval columns appear only when some row has more than one
seed, so a table of single runs reads as before.
"""
import csv
from typing import List, Optional

#: Columns of the CSV. ``mIoU`` and ``mAcc`` are means over the seeds, and
#: so are the memory and time numbers; the ``min_*`` ones are the least
#: over the seeds.
COLUMNS = [
    'model', 'method', 'setting', 'reductions', 'layers', 'mIoU', 'mAcc',
    'mIoU_std', 'mAcc_std', 'n_seeds', 'seeds', 'mIoU_diff',
    'mIoU_diff_low', 'mIoU_diff_high', 'mIoU_diff_seeds', 'front',
    'analytical_peak_mb', 'analytical_mean_mb', 'measured_peak_mb',
    'measured_mean_mb', 'step_peak_mb', 'step_time_s', 'analytical_ratio',
    'measured_ratio', 'step_peak_ratio', 'time_ratio', 'min_rel_change',
    'min_change_over_decay', 'min_grad_share', 'work_dir'
]
#: Mark of a difference whose interval holds 0.
NOT_SIGNIFICANT = '~'
#: Header of the difference column.
DIFF_HEADER = (f'mIoU - vanilla, mean [95% interval paired by seed] '
               f'({NOT_SIGNIFICANT}: holds 0)')
#: Cells of the front column: on the front, dominated, no whole-step peak.
FRONT_CELLS = {True: 'yes', False: 'no', None: '-'}


def against(row: dict, reference: dict, key: str) -> Optional[float]:
    """``row[key]`` as a fraction of ``reference[key]`` (e.g.
    'step_peak_mb', 'step_time_s'); None where either is missing or the
    reference's is 0."""
    value, base = row.get(key), reference.get(key)
    return None if value is None or not base else value / base


def _fmt(value, digits=2):
    if value is None:
        return '-'
    if isinstance(value, float):
        return f'{value:.{digits}f}'
    return str(value)


def mean_cell(row: dict, key: str) -> str:
    """``mean ± std`` over the seeds; the value alone for one seed."""
    std = row.get(f'{key}_std')
    if std is None:
        return _fmt(row[key])
    return f'{row[key]:.2f} ± {std:.2f}'


def difference_cell(diff: Optional[dict]) -> str:
    """The paired difference to vanilla (see
    :func:`~mmseg_hosvd.protocol.seed_statistics.paired_difference`)."""
    if diff is None:
        return '-'
    if diff['low'] is None:
        return f"{diff['mean']:+.2f} (1 seed, no interval)"
    mark = f' {NOT_SIGNIFICANT}' if diff['contains_zero'] else ''
    return (f"{diff['mean']:+.2f} [{diff['low']:+.2f}, "
            f"{diff['high']:+.2f}]{mark}")


def _several_seeds(rows: List[dict]) -> bool:
    return any(len(r.get('seeds') or ()) > 1 for r in rows)


def markdown_table(rows: List[dict]) -> str:
    """The comparison as a Markdown table."""
    several = _several_seeds(rows)
    header = ['model', 'method', 'setting', 'reductions', 'layers', 'mIoU',
              'mAcc']
    if several:
        header += ['seeds', DIFF_HEADER]
    header += [
        'front (mIoU vs whole-step peak)', 'analytical peak / mean (MB)',
        'measured peak / mean (MB)', 'whole-step peak (MB)', 'step (s)',
        'analytical / vanilla', 'measured / vanilla', 'whole-step / vanilla',
        'time / vanilla', 'least weight change',
        'least change / weight decay alone', 'least gradient share'
    ]
    lines = ['| ' + ' | '.join(header) + ' |', '|---' * len(header) + '|']
    for r in rows:
        cells = [
            r['model'], r['method'], r['setting'],
            r.get('reductions') or '-',
            str(r['layers']),
            mean_cell(r, 'mIoU'),
            mean_cell(r, 'mAcc')
        ]
        if several:
            cells += [str(len(r['seeds'])), difference_cell(r['mIoU_diff'])]
        cells += [
            FRONT_CELLS[r.get('front')],
            f"{_fmt(r['analytical_peak_mb'], 3)} / "
            f"{_fmt(r['analytical_mean_mb'], 3)}",
            f"{_fmt(r['measured_peak_mb'], 2)} / "
            f"{_fmt(r['measured_mean_mb'], 2)}",
            _fmt(r['step_peak_mb'], 1),
            _fmt(r['step_time_s'], 3),
            _fmt(r['analytical_ratio'], 3),
            _fmt(r['measured_ratio'], 3),
            _fmt(r['step_peak_ratio'], 3),
            _fmt(r['time_ratio'], 2),
            _fmt(r.get('min_rel_change'), 4),
            _fmt(r.get('min_change_over_decay'), 1),
            _fmt(r.get('min_grad_share'), 3)
        ]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def csv_row(row: dict) -> dict:
    """A row as :data:`COLUMNS` (the seeds space-separated, the difference
    to vanilla in its four columns)."""
    out = {k: row.get(k) for k in COLUMNS}
    seeds = row.get('seeds') or []
    out['n_seeds'] = len(seeds)
    out['seeds'] = ' '.join(str(s) for s in seeds if s is not None)
    diff = row.get('mIoU_diff') or {}
    out.update(mIoU_diff=diff.get('mean'), mIoU_diff_low=diff.get('low'),
               mIoU_diff_high=diff.get('high'),
               mIoU_diff_seeds=diff.get('seeds'))
    return out


def write_csv(rows: List[dict], path: str) -> None:
    """Writes the rows with :data:`COLUMNS` as header."""
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(csv_row(row))
