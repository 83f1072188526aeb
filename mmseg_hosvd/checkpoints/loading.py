"""Loads MMEngine checkpoints without running code from them.

``torch.load(..., weights_only=True)`` rebuilds only tensors, plain containers
and allowlisted globals, so a checkpoint cannot run code when it is loaded.
MMEngine's checkpoints (this project's and plain MMSegmentation's alike) also
hold the MessageHub state and numpy scalars; :func:`allowed_globals` is what
they need beyond torch's defaults, found with
``torch.serialization.get_unsafe_globals_in_checkpoint`` on real checkpoints:

* ``mmengine.logging.history_buffer.HistoryBuffer`` (the logged scalars),
  whose state names its statistics methods as ``getattr(HistoryBuffer,
  'mean')``: ``builtins.getattr`` is allowed only for those four names;
* numpy arrays and scalars: ``ndarray``, ``dtype``, the array and scalar
  reconstructors (under numpy 2's ``numpy._core`` and numpy 1's
  ``numpy.core`` names) and the plain numeric dtype classes.

The allowlist is active only around these loads
(``torch.serialization.safe_globals`` as a context, adding only what the
user has not allowlisted already), never added process-wide: the user's own
``torch.load`` calls keep torch's defaults.

A checkpoint that needs anything else is refused with
:class:`UntrustedCheckpointError`, which names what it needs. For a file you
trust, opt in with the environment variable
``MMSEG_HOSVD_TRUST_CHECKPOINTS=1``, the config key
``trust_checkpoint = True`` (read by ``tools/train.py`` and
``tools/test.py``) or :func:`trusted_checkpoints` in Python; the file is then
unpickled fully (``weights_only=False``).

A file that torch cannot read at all (empty, cut short, not written by
``torch.save``) raises :class:`UnreadableCheckpointError`, naming the file,
its size and torch's own reason, trusted or not.
"""
import contextlib
import functools
import os
import os.path as osp
import pickle
import threading
import urllib.parse
import zipfile

import torch

from mmseg_hosvd.checkpoints.trust import (
    TRUST_CONFIG_KEY,
    TRUST_ENV,
    checkpoints_trusted,
)

#: The statistics methods of MMEngine's HistoryBuffer, which its pickled
#: state names with ``getattr``.
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')
#: numpy dtypes whose arrays and scalars a checkpoint may hold.
NUMERIC_DTYPES = ('bool', 'int8', 'int16', 'int32', 'int64', 'uint8',
                  'uint16', 'uint32', 'uint64', 'float16', 'float32',
                  'float64')
_NUMPY_MULTIARRAY = ('numpy._core.multiarray', 'numpy.core.multiarray')

class UntrustedCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs more than MMEngine checkpoints hold to load.

    Attributes:
        unsafe_globals: The globals it needs beyond the allowlist.
    """

    def __init__(self, message: str, unsafe_globals=()):
        super().__init__(message)
        self.unsafe_globals = tuple(unsafe_globals)


class UnreadableCheckpointError(RuntimeError):
    """A checkpoint file that torch cannot read: empty, cut short, or not
    written by ``torch.save``.

    Attributes:
        filename: The file.
        size: Its size in bytes.
    """

    def __init__(self, message: str, filename: str, size: int):
        super().__init__(message)
        self.filename = filename
        self.size = size


def history_buffer_statistic(owner, name: str):
    """``builtins.getattr`` for loading: only HistoryBuffer's statistics.

    Args:
        owner: What the checkpoint reads an attribute of.
        name: The attribute.

    Returns:
        The statistics method ``HistoryBuffer.<name>``.

    Raises:
        pickle.UnpicklingError: For any other object or name.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    if owner is not HistoryBuffer or name not in HISTORY_BUFFER_STATISTICS:
        raise pickle.UnpicklingError(
            f'getattr({owner!r}, {name!r}) is not allowed: a checkpoint may '
            f'only name the HistoryBuffer statistics '
            f'{HISTORY_BUFFER_STATISTICS}')
    return getattr(owner, name)


@functools.lru_cache(maxsize=None)
def allowed_globals() -> tuple:
    """What MMEngine and mmseg checkpoints hold beyond torch's defaults.

    Returns:
        Entries for ``torch.serialization.safe_globals``.
    """
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer
    entries = [
        HistoryBuffer, np.ndarray, np.dtype,
        (history_buffer_statistic, 'builtins.getattr')
    ]
    reconstructors = (np.zeros(1).__reduce__()[0],
                      np.float64(0).__reduce__()[0])
    for function in reconstructors:
        entries += [(function, f'{module}.{function.__name__}')
                    for module in _NUMPY_MULTIARRAY]
    entries += [type(np.dtype(name)) for name in NUMERIC_DTYPES]
    return tuple(entries)


#: Held around each allowlisted load: torch's safe globals are one list per
#: process, which a load in another thread would lose when this one exits.
_ALLOWLIST_LOCK = threading.Lock()


@contextlib.contextmanager
def _allowlisted():
    """``safe_globals`` with what the user has not allowlisted already, one
    load at a time in a process (:data:`_ALLOWLIST_LOCK`).

    ``safe_globals`` removes its entries on exit, so entries the user added
    with ``add_safe_globals`` are left out of it and stay.
    """
    with _ALLOWLIST_LOCK:
        present = torch.serialization.get_safe_globals()
        with torch.serialization.safe_globals(
            [entry for entry in allowed_globals() if entry not in present]):
            yield


def _unsafe_globals(filename: str) -> list:
    try:
        return sorted(
            torch.serialization.get_unsafe_globals_in_checkpoint(filename))
    except (ValueError, RuntimeError):  # not torch's zip format
        return []


def _unpickler_reason(error: Exception) -> str:
    """The weights-only unpickler's own message, which torch re-raises in
    a longer one (keeping the original as ``__context__``)."""
    original = error.__context__
    if not isinstance(original, pickle.UnpicklingError):
        original = error
    return (str(original).splitlines() or [repr(original)])[0]


def _refusal(filename: str, error: Exception) -> UntrustedCheckpointError:
    unsafe = _unsafe_globals(filename)
    if unsafe:
        needs = (f"it needs {', '.join(unsafe)}, which MMEngine and "
                 'MMSegmentation checkpoints do not hold')
    else:
        needs = ('it does not load with weights_only=True '
                 f'({_unpickler_reason(error)})')
    return UntrustedCheckpointError(
        f'Refusing to load checkpoint {filename!r}: {needs}; unpickling it '
        'could run code from the file. If you trust the file, set '
        f'{TRUST_ENV}=1 in the environment, or `{TRUST_CONFIG_KEY} = True` '
        'in the config (tools/train.py and tools/test.py: --cfg-options '
        f'{TRUST_CONFIG_KEY}=True).', unsafe)


def _torch_reason(error: Exception) -> str:
    """The first sentence of torch's message (the rest is advice), with the
    exception's class."""
    text = (str(error).splitlines() or [''])[0].split('. ')[0]
    return f'{type(error).__name__}: {text}' if text else type(error).__name__


def _unreadable(filename: str, error: Exception) -> UnreadableCheckpointError:
    size = osp.getsize(filename)
    what = ('a complete zip archive that torch cannot read as a checkpoint'
            if zipfile.is_zipfile(filename) else
            'cut short (an interrupted save or copy) or not a checkpoint '
            'written by torch.save')
    return UnreadableCheckpointError(
        f'Cannot load checkpoint {filename!r} ({size} bytes): it is {what} '
        f'({_torch_reason(error)}).', filename, size)


def _empty(filename: str) -> UnreadableCheckpointError:
    return UnreadableCheckpointError(
        f'Cannot load checkpoint {filename!r}: the file is empty (0 bytes), '
        'as a save or copy that never wrote leaves it; delete it, or load '
        'another checkpoint.', filename, 0)


#: What torch.load raises for a file it cannot read (with the allowlist, a
#: ``pickle.UnpicklingError`` is a refusal instead).
_READ_ERRORS = (EOFError, RuntimeError, KeyError, ValueError, IndexError,
                pickle.UnpicklingError)


def load_local_checkpoint(filename: str, map_location=None,
                          mmap: bool = False):
    """Loads a local checkpoint with the allowlist, or fully if trusted.

    Args:
        filename: Path of the checkpoint.
        map_location: As for :func:`torch.load`.
        mmap: Map the tensors' storage instead of reading it, as for
            :func:`torch.load` (for callers that read only its meta).

    Returns:
        The checkpoint.

    Raises:
        FileNotFoundError: If ``filename`` is not a file.
        UnreadableCheckpointError: If it is empty, cut short or not a torch
            checkpoint.
        UntrustedCheckpointError: If it needs globals beyond the allowlist
            and no opt-in is active.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    if osp.getsize(filename) == 0:
        raise _empty(filename)
    trusted = checkpoints_trusted()
    try:
        if trusted:
            return torch.load(filename, map_location=map_location,
                              weights_only=False, mmap=mmap)
        with _allowlisted():
            try:
                return torch.load(filename, map_location=map_location,
                                  weights_only=True, mmap=mmap)
            except pickle.UnpicklingError as error:
                raise _refusal(filename, error) from error
    except UntrustedCheckpointError:
        raise
    except _READ_ERRORS as error:
        raise _unreadable(filename, error) from error


def download_checkpoint(url: str, model_dir=None, progress=False) -> str:
    """Downloads ``url`` into torch.hub's checkpoint cache (once).

    Args:
        url: ``http://`` or ``https://`` address.
        model_dir: Cache directory; torch.hub's ``checkpoints`` by default.
        progress: Whether to show a progress bar.

    Returns:
        The local path, named as ``torch.hub`` names it.
    """
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    path = osp.join(model_dir, osp.basename(urllib.parse.urlparse(url).path))
    if not osp.isfile(path):
        os.makedirs(model_dir, exist_ok=True)
        torch.hub.download_url_to_file(url, path, progress=progress)
    return path


def load_url_checkpoint(filename: str,
                        map_location=None,
                        model_dir=None,
                        progress=False):
    """Loads an ``http(s)://`` checkpoint as :func:`load_local_checkpoint`.

    When distributed, rank 0 downloads first and the others read its copy.

    Args:
        filename: The URL.
        map_location: As for :func:`torch.load`.
        model_dir: Download directory; torch.hub's cache by default.
        progress: Whether to show a progress bar.

    Returns:
        The checkpoint.
    """
    from mmengine.dist import barrier, get_dist_info
    rank, _ = get_dist_info()
    if rank == 0:
        path = download_checkpoint(filename, model_dir, progress)
    barrier()
    if rank != 0:
        path = download_checkpoint(filename, model_dir, progress)
    return load_local_checkpoint(path, map_location)
