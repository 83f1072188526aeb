"""Whether a checkpoint was trained with its config as the file is now.

MMEngine writes the config a run trained with (command-line options
merged) into every checkpoint's ``meta['cfg']``. :func:`changed_keys`
compares the parts of it that define training with the config now, so
that the protocol trains a stage again after its config was edited, where
file times alone (:func:`~mmseg_hosvd.protocol.matrix.stale_reason`) would
reuse the old checkpoint.
"""
import zipfile
from typing import List, Optional

from mmengine.config import Config

from ..checkpoints.loading import load_local_checkpoint

#: Top-level config keys that define what a training run does. Left out:
#: what the command line or a test run sets (launcher, work_dir, resume, the
#: validation loop, which the protocol turns off when it tests next) and
#: ``load_from``, whose file time ``stale_reason`` checks.
TRAINING_KEYS = ('model', 'custom_hooks', 'optim_wrapper', 'param_scheduler',
                 'train_cfg', 'train_dataloader', 'randomness')
#: Entries of those keys that do not change the trained weights.
IGNORED = {'train_cfg': ('val_interval', )}


def _plain(value):
    """Dicts, lists and tuples as plain dicts and lists, for comparing."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def trained_config(checkpoint: str) -> Optional[Config]:
    """The config recorded in ``checkpoint``'s meta, or None if it has none.

    Raises:
        UnreadableCheckpointError: For an empty or truncated file (a
            RuntimeError; see :mod:`~mmseg_hosvd.checkpoints.loading`).
        UntrustedCheckpointError: For a file that does not load with the
            allowlist (see :mod:`~mmseg_hosvd.checkpoints.loading`): one
            that is not a checkpoint at all, or needs other globals.
    """
    # only the meta is used: the tensors of a zip-format file (any
    # torch.save since 1.6) are mapped, not read
    meta = load_local_checkpoint(
        checkpoint, map_location='cpu',
        mmap=zipfile.is_zipfile(checkpoint)).get('meta') or {}
    text = meta.get('cfg')
    if not isinstance(text, str):
        return None
    return Config.fromstring(text, '.py')


def changed_keys(now: Config, trained: Config) -> List[str]:
    """The keys of :data:`TRAINING_KEYS` whose value differs between the
    config as it is now and the one a checkpoint was trained with
    (``trained``, from :func:`trained_config`)."""
    return [
        key for key in TRAINING_KEYS
        if _compared(trained, key) != _compared(now, key)
    ]


def _compared(cfg: Config, key: str):
    value = _plain(cfg.get(key))
    if isinstance(value, dict):
        for entry in IGNORED.get(key, ()):
            value.pop(entry, None)
    return value
