"""Checkpoints that are never left half-written."""
import os
import os.path as osp
import tempfile
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend


class AtomicLocalBackend(LocalBackend):
    """MMEngine's local file backend with an all-or-nothing ``put``.

    The bytes go to a temporary file in the same directory, are flushed to
    disk, and only then renamed over the target (``os.replace`` is atomic).
    A process killed while saving a checkpoint leaves the previous file at
    that path intact and no partial file under the final name.
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Writes ``obj`` to ``filepath`` atomically."""
        filepath = str(filepath)
        directory = osp.dirname(osp.abspath(filepath))
        os.makedirs(directory, exist_ok=True)
        handle, tmp = tempfile.mkstemp(
            prefix=f'.{osp.basename(filepath)}.', suffix='.tmp', dir=directory)
        try:
            with os.fdopen(handle, 'wb') as f:
                f.write(obj)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, filepath)
        except BaseException:
            if osp.exists(tmp):
                os.remove(tmp)
            raise


def register_atomic_local_backend() -> None:
    """Makes the atomic backend MMEngine's default for local paths."""
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
