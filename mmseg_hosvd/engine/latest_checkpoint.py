"""The checkpoint a run resumes from: its work dir's latest whole one."""
import os
import os.path as osp
import re
import zipfile
from typing import List, Optional, Tuple

#: The pointer file that MMEngine's CheckpointHook keeps in the work dir.
POINTER = 'last_checkpoint'
#: Checkpoint names of iteration- and epoch-based runs.
NUMBERED_CHECKPOINT = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')


def is_whole_checkpoint(path: str) -> bool:
    """Whether ``path`` is a complete checkpoint file.

    ``torch.save`` writes a zip archive whose directory comes last, so a
    file cut short (or empty, or not a checkpoint at all) has none.

    Args:
        path: A path.

    Returns:
        True for a file whose zip directory reads.
    """
    return osp.isfile(path) and zipfile.is_zipfile(path)


def read_pointer(work_dir: str) -> Optional[str]:
    """What ``work_dir``'s ``last_checkpoint`` names, or None.

    Args:
        work_dir: The run's work dir.

    Returns:
        The path it holds; None when it is missing or empty.
    """
    pointer = osp.join(work_dir, POINTER)
    if not osp.isfile(pointer):
        return None
    with open(pointer) as f:
        return f.read().strip() or None


def numbered_checkpoints(directory: str) -> List[Tuple[int, str]]:
    """The ``iter_N.pth`` / ``epoch_N.pth`` files of ``directory``.

    Args:
        directory: Where a CheckpointHook saves.

    Returns:
        (N, path) pairs, the latest first.
    """
    if not osp.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        match = NUMBERED_CHECKPOINT.match(name)
        if match:
            found.append((int(match.group(1)), osp.join(directory, name)))
    return sorted(found, reverse=True)


def latest_checkpoint(work_dir: str,
                      checkpoint_dir: Optional[str] = None
                      ) -> Tuple[Optional[str], Optional[str]]:
    """The checkpoint that a resumed run of ``work_dir`` continues from.

    What ``last_checkpoint`` names when that is a whole checkpoint;
    otherwise (the pointer empty, missing, or naming a missing or partial
    file) the latest whole numbered checkpoint in ``checkpoint_dir``.

    Args:
        work_dir: The run's work dir, which holds ``last_checkpoint``.
        checkpoint_dir: Where the checkpoints are saved; ``work_dir`` by
            default.

    Returns:
        (path, why the pointer was passed over) — the path is None when the
        run has no whole checkpoint, the reason None when the pointer
        was used or there was none to use.
    """
    named = read_pointer(work_dir)
    if named is not None and is_whole_checkpoint(named):
        return named, None
    pointer = osp.join(work_dir, POINTER)
    if named is not None:
        problem = (f'{pointer} names {named}, which is missing'
                   if not osp.exists(named) else
                   f'{pointer} names {named}, which is not a whole '
                   'checkpoint')
    elif osp.exists(pointer):
        problem = f'{pointer} is empty'
    else:
        problem = None
    for _, path in numbered_checkpoints(checkpoint_dir or work_dir):
        if is_whole_checkpoint(path):
            return path, problem
    return None, problem
