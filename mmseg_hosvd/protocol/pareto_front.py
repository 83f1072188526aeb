"""The rows of a comparison on the front of accuracy against memory."""
from typing import List

#: The memory number the front is drawn against.
FRONT_MEMORY = 'step_peak_mb'


def dominates(row: dict, other: dict, memory: str = FRONT_MEMORY) -> bool:
    """Whether ``row`` needs no more memory than ``other`` and reaches no
    lower mean mIoU, and is strictly better in one of the two."""
    return (row[memory] <= other[memory] and row['mIoU'] >= other['mIoU']
            and (row[memory] < other[memory] or row['mIoU'] > other['mIoU']))


def mark_front(rows: List[dict], memory: str = FRONT_MEMORY) -> None:
    """Sets each row's ``front``: whether no other row of its model
    dominates it (:func:`dominates`), comparing mean mIoU and ``memory``;
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
