"""Runs of one model that started from different checkpoints.

Seeds pool into a row, and a row's difference to vanilla pairs seeds, on
the premise that every run of the model started from the same calibrated
checkpoint. Runs from another one (a calibration made again, or made on
another machine, where the same configs give other weights) would mix two
experiments into one number. Each run's test record keeps the SHA-256 of
the checkpoint its training started from
(:class:`~mmseg_hosvd.engine.StartCheckpointHook`);
:func:`separate_starts` makes the runs of each start a model of their
own.
"""
from typing import Dict, List, Optional, Set

#: Hex digits of the start's SHA-256 that name it.
DIGEST_DIGITS = 8
#: The start of runs whose record has none (trained before it was kept).
UNKNOWN = 'unknown'


def start_digest(record: dict) -> Optional[str]:
    """The first :data:`DIGEST_DIGITS` hex digits of the SHA-256 of the
    checkpoint a test record's training started from, or None when the
    record does not say."""
    start = (record.get('start_checkpoint') or {}).get('start') or {}
    digest = start.get('sha256')
    return digest[:DIGEST_DIGITS] if digest else None


def separate_starts(runs: List[dict]) -> None:
    """Renames the model of every run of a model whose runs started from
    more than one known checkpoint to ``<model>@<start>`` (``@unknown``
    for a run that recorded none), so that rows pool, and differences
    pair, only runs from one start. Runs of a model with one known start
    (or none) keep its name.

    Args:
        runs: Runs with ``model`` and ``start`` (see :func:`start_digest`),
            changed in place.
    """
    starts: Dict[str, Set[str]] = {}
    for run in runs:
        if run.get('start'):
            starts.setdefault(run['model'], set()).add(run['start'])
    for run in runs:
        if len(starts.get(run['model'], ())) > 1:
            run['model'] = f"{run['model']}@{run.get('start') or UNKNOWN}"


def separated_models(rows: List[dict]) -> Dict[str, List[str]]:
    """The models whose runs :func:`separate_starts` told apart, each with
    its starts, from the rows' model names."""
    separated: Dict[str, List[str]] = {}
    for row in rows:
        model, mark, start = row['model'].partition('@')
        if mark and start not in separated.setdefault(model, []):
            separated[model].append(start)
    return separated
