"""What fine-tuning buys on each model: the calibrated classifier, vanilla
fine-tuning at each layer count, and the deeper count's gain over the
shallower one, paired by seed.

The calibrated mIoU is the last validation that a calibration run logged
(``<work dir>/<timestamp>/vis_data/scalars.json`` of its newest run, as
MMEngine's ``LocalVisBackend`` writes it); a calibration run is a work dir
of a ``*_calib_*`` config among the compared paths.
"""
import glob
import json
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence

from ..reductions.describe import baseline_tag
from ..utils.file_digest import file_digest
from .comparison_table import difference_cell, mean_cell
from .seed_statistics import paired_difference
from .start_groups import DIGEST_DIGITS

#: What names a calibration config (``<prefix>_calib_<dataset>.py``).
CALIB_TAG = '_calib_'


def calibrated_miou(work_dir: str) -> Optional[float]:
    """The last validation mIoU logged by the newest run in ``work_dir``,
    or None when it logged none."""
    runs = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                     'scalars.json')))
    if not runs:
        return None
    last = None
    with open(runs[-1]) as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if 'mIoU' in record:
                last = float(record['mIoU'])
    return last


def _last_checkpoint(work_dir: str) -> Optional[str]:
    """The ``iter_<N>.pth`` of ``work_dir`` with the largest N, or None."""
    found = glob.glob(osp.join(work_dir, 'iter_*.pth'))
    numbered = [(int(m.group(1)), path) for path in found
                if (m := re.search(r'iter_(\d+)\.pth$', path))]
    return max(numbered)[1] if numbered else None


def calibrations(work_dirs: Sequence[str], model_of,
                 by_start: bool = False) -> Dict[str, float]:
    """Model -> calibrated mIoU, from the calibration runs among
    ``work_dirs``.

    Args:
        work_dirs: Work dirs (expanded paths).
        model_of: Maps a work dir's basename to its model name.
        by_start: Also under ``<model>@<start>``, the name
            :func:`~.start_groups.separate_starts` gives the runs that
            started from the calibration's last checkpoint (which reads
            and hashes that checkpoint).
    """
    found = {}
    for work_dir in work_dirs:
        name = osp.basename(osp.normpath(work_dir))
        if CALIB_TAG not in name:
            continue
        miou = calibrated_miou(work_dir)
        if miou is None:
            continue
        found[model_of(name)] = miou
        checkpoint = _last_checkpoint(work_dir) if by_start else None
        if checkpoint is not None:
            digest = file_digest(checkpoint)[:DIGEST_DIGITS]
            found[f'{model_of(name)}@{digest}'] = miou
    return found


def _vanilla_by_layers(rows: List[dict], model: str) -> Dict[int, dict]:
    return {r['layers']: r for r in rows
            if r['model'] == model and r['method'] == 'vanilla'
            and r.get('setting', '') in ('', None)
            and baseline_tag(r.get('reductions')) == (r.get('reductions')
                                                      or '')}


def gain_rows(rows: List[dict], calibrated: Dict[str, float]) -> List[dict]:
    """Per model with vanilla rows: the calibrated mIoU, each layer
    count's vanilla row with its gain over the calibrated mIoU, and each
    layer count's difference to the next smaller one, paired by seed.

    Args:
        rows: Rows of :func:`~.comparison.collect`.
        calibrated: :func:`calibrations` of the same paths.

    Returns:
        ``dict(model, calibrated, layers=[dict(layers, row, gain,
        over_previous)])`` per model, in the rows' order.
    """
    gains = []
    for model in dict.fromkeys(r['model'] for r in rows):
        vanilla = _vanilla_by_layers(rows, model)
        if not vanilla:
            continue
        base = calibrated.get(model)
        entries, previous = [], None
        for layers in sorted(vanilla):
            row = vanilla[layers]
            entries.append(dict(
                layers=layers, row=row,
                gain=None if base is None else row['mIoU'] - base,
                over_previous=None if previous is None else
                paired_difference(row['seed_mIoU'], previous['seed_mIoU'])))
            previous = row
        gains.append(dict(model=model, calibrated=base, layers=entries))
    return gains


def gain_table(gains: List[dict]) -> str:
    """:func:`gain_rows` as a Markdown table: one line per model and layer
    count."""
    lines = ['| model | calibrated | layers | vanilla | vanilla - calibrated '
             '| vanilla - fewer layers, mean [95% interval paired by seed] |',
             '|---|---|---|---|---|---|']
    for model in gains:
        calibrated = ('-' if model['calibrated'] is None else
                      f"{model['calibrated']:.2f}")
        for entry in model['layers']:
            gain = ('-' if entry['gain'] is None else
                    f"{entry['gain']:+.2f}")
            lines.append(
                f"| {model['model']} | {calibrated} | {entry['layers']} | "
                f"{mean_cell(entry['row'], 'mIoU')} | {gain} | "
                f"{difference_cell(entry['over_previous'])} |")
    return '\n'.join(lines)
