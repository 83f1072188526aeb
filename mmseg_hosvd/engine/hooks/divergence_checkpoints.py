"""Which checkpoints of a diverged run to keep: those saved before the
divergence began."""
import os.path as osp
from typing import List, Optional, Tuple

from ..latest_checkpoint import numbered_checkpoints, read_pointer


def _iteration_of(path: str) -> Optional[int]:
    """The iteration of an ``iter_<n>.pth`` checkpoint, or None."""
    name = osp.basename(path)
    digits = name[len('iter_'):-len('.pth')]
    if name.startswith('iter_') and name.endswith('.pth') and (
            digits.isdigit()):
        return int(digits)
    return None


def checkpoints_before(folder: str, onset: int) -> List[Tuple[int, str]]:
    """The ``iter_<n>.pth`` checkpoints in ``folder`` with ``n < onset``.

    Returns:
        ``(n, path)`` pairs, the latest first.
    """
    return [(n, path) for n, path in numbered_checkpoints(folder)
            if _iteration_of(path) is not None and n < onset]


def checkpoint_verdict(work_dir: str, onset: int) -> str:
    """What to say of the run's checkpoints when it diverged at ``onset``.

    A checkpoint holds the weights after its iteration: it is kept when
    that iteration is before ``onset`` (see
    :class:`~.finite_loss_hook.FiniteLossHook`).

    Args:
        work_dir: The run's work dir (its ``last_checkpoint`` record).
        onset: The iteration whose weights diverged first.

    Returns:
        Sentences naming the kept checkpoint, or saying that there is none.
    """
    last = read_pointer(work_dir)
    folder = osp.dirname(last) if last else work_dir
    earlier = checkpoints_before(folder, onset)
    older = (f'{earlier[0][1]} (iteration {earlier[0][0]}), saved before '
             'it, is kept. ' if earlier else
             f'No checkpoint saved before it is left in {folder}. ')
    if last is None:
        return older if earlier else 'No checkpoint was saved before it. '
    if not osp.isfile(last):
        return (f'The last checkpoint, {last} (named in '
                f"{osp.join(work_dir, 'last_checkpoint')}), is missing. " +
                older)
    iteration = _iteration_of(last)
    if iteration is None:
        return (f'The last checkpoint, {last}, was saved at an iteration '
                'its name does not tell: check it before using it. ' + older)
    if iteration < onset:
        return (f'The last checkpoint, {last}, is kept (iteration '
                f'{iteration}, before the divergence began). ')
    return (f'The last checkpoint, {last}, holds the weights of iteration '
            f'{iteration}, at or after the divergence began: do not use '
            'it. ' + older)
