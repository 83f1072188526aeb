"""Files that are never left half-written, and the leftovers of killed
writes."""
import os
import os.path as osp
import re
import tempfile
from pathlib import Path
from typing import List, Union

from mmengine.fileio import LocalBackend, register_backend

#: The temporary files of :func:`write_atomically`: ``.<name>.<random>.tmp``
#: beside the target (``tempfile.mkstemp`` draws 8 characters).
TEMPORARY_FILE = re.compile(r'^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$')


def write_atomically(filepath: Union[str, Path], data: bytes) -> None:
    """Writes ``data`` to ``filepath`` all or nothing.

    The bytes go to a temporary file in the same directory, are flushed to
    disk, and only then renamed over the target (``os.replace`` is atomic).
    A process killed while writing leaves the previous file at that path
    intact and no partial file under the final name; a write that fails
    (a full disk) removes its temporary file and raises.

    Args:
        filepath: The target.
        data: Its new content.

    Raises:
        OSError: When the write fails; the target is then unchanged.
    """
    filepath = str(filepath)
    directory = osp.dirname(osp.abspath(filepath))
    os.makedirs(directory, exist_ok=True)
    handle, tmp = tempfile.mkstemp(
        prefix=f'.{osp.basename(filepath)}.', suffix='.tmp', dir=directory)
    try:
        with os.fdopen(handle, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def remove_stale_temporaries(directory: str) -> List[str]:
    """Removes the temporary files that killed writes left in ``directory``.

    Only names of the form :data:`TEMPORARY_FILE` are touched. Call it when
    no write into ``directory`` is under way (at the start of a run).

    Args:
        directory: A directory; a missing one has nothing to remove.

    Returns:
        The paths removed.
    """
    if not osp.isdir(directory):
        return []
    removed = []
    for name in sorted(os.listdir(directory)):
        path = osp.join(directory, name)
        if TEMPORARY_FILE.match(name) and osp.isfile(path):
            os.remove(path)
            removed.append(path)
    return removed


class AtomicLocalBackend(LocalBackend):
    """MMEngine's local file backend whose ``put`` and ``put_text`` write
    all or nothing (:func:`write_atomically`)."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Writes ``obj`` to ``filepath`` atomically."""
        write_atomically(filepath, obj)

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        """Writes the text ``obj`` to ``filepath`` atomically."""
        write_atomically(filepath, obj.encode(encoding))


def register_atomic_local_backend() -> None:
    """Makes the atomic backend MMEngine's default for local paths."""
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
