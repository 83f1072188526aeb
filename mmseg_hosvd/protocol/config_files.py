"""Keeps a folder of generated configs equal to what a writer renders.

A writer is a module with ``render_all(table)`` (the text of every file it
generates, by its path under ``configs/``) and ``on_disk(root)`` (the paths
under ``root`` it owns now): :mod:`.config_writer` for the embedded
protocol, :mod:`.real_dataset_configs` for the real datasets.
"""
import os
import os.path as osp
from typing import Dict, Iterable, List


def compare_files(root: str, wanted: Dict[str, str],
                  present: Iterable[str]) -> dict:
    """What differs between the files under ``root`` and ``wanted``.

    Args:
        root: The configs folder.
        wanted: The text of every generated file, by its path under
            ``root``.
        present: The paths under ``root`` that the writer owns now.

    Returns:
        ``differ``, ``missing`` and ``extra``: sorted paths under ``root``.
    """
    present = set(present)
    differ = []
    for path in sorted(present & set(wanted)):
        with open(osp.join(root, path), encoding='utf-8') as f:
            if f.read() != wanted[path]:
                differ.append(path)
    return dict(differ=differ, missing=sorted(set(wanted) - present),
                extra=sorted(present - set(wanted)))


def write_files(root: str, wanted: Dict[str, str],
                present: Iterable[str]) -> List[str]:
    """Writes the files of ``wanted`` that differ or are missing under
    ``root``, and removes the extra ones of ``present`` (the arguments of
    :func:`compare_files`).

    Returns:
        The paths changed.
    """
    state = compare_files(root, wanted, present)
    for path in state['differ'] + state['missing']:
        os.makedirs(osp.dirname(osp.join(root, path)), exist_ok=True)
        with open(osp.join(root, path), 'w', encoding='utf-8') as f:
            f.write(wanted[path])
    for path in state['extra']:
        os.remove(osp.join(root, path))
    return state['differ'] + state['missing'] + state['extra']


def compare(writer, root: str, table=None) -> dict:
    """What differs between ``root`` and what ``writer`` renders from
    ``table`` (its default table when None); see :func:`compare_files`."""
    return compare_files(root, writer.render_all(table), writer.on_disk(root))


def write_all(writer, root: str, table=None) -> List[str]:
    """Writes what ``writer`` renders from ``table`` under ``root``; see
    :func:`write_files`."""
    return write_files(root, writer.render_all(table), writer.on_disk(root))
