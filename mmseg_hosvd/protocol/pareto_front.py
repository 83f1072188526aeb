"""The rows of a comparison on the front of accuracy against memory."""
from typing import List

#: The memory number the front is drawn against.
FRONT_MEMORY = 'step_peak_mb'


def accuracy(row: dict) -> float:
    """The mIoU a row is placed at: on its vanilla baseline's seeds where
    it has a paired difference (``mIoU_paired``), so that a row run on
    fewer seeds is not placed by their luck; else its mean."""
    return row.get('mIoU_paired', row['mIoU'])


def dominates_at(memory: float, score: float, other_memory: float,
                 other_score: float) -> bool:
    """Whether a point at (``memory``, ``score``) needs no more memory than
    one at (``other_memory``, ``other_score``), scores no lower, and is
    strictly better in one of the two."""
    return (memory <= other_memory and score >= other_score
            and (memory < other_memory or score > other_score))


def dominates(row: dict, other: dict, memory: str = FRONT_MEMORY) -> bool:
    """Whether ``row`` needs no more memory than ``other`` and reaches no
    lower mIoU (:func:`accuracy`), and is strictly better in one of the
    two."""
    return dominates_at(row[memory], accuracy(row), other[memory],
                        accuracy(other))


def mark_front(rows: List[dict], memory: str = FRONT_MEMORY) -> None:
    """Sets each row's ``front``: whether no other row of its model
    dominates it (:func:`dominates`), comparing mIoU and ``memory``;
    None for a row that did not record ``memory``.

    Args:
        rows: Rows of :func:`~mmseg_hosvd.protocol.comparison.collect`.
        memory: The memory key.
    """
    measured = [r for r in rows if r.get(memory) is not None]
    for row in rows:
        if row.get(memory) is None:
            row['front'] = None
            continue
        row['front'] = not any(
            other is not row and other['model'] == row['model']
            and dominates(other, row, memory) for other in measured)
