"""MMEngine's CheckpointHook that never leaves fewer good checkpoints than
before, and whose ``resume`` resumes the work dir's own run."""
import errno
import logging
import os.path as osp
from collections import deque

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmseg.registry import HOOKS

from ..atomic_local_backend import remove_stale_temporaries, write_atomically
from ..latest_checkpoint import (
    POINTER,
    latest_checkpoint,
    numbered_checkpoints,
    read_pointer,
)


class CheckpointWriteError(OSError):
    """A checkpoint could not be written; the previous one is kept."""


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """``CheckpointHook`` (same arguments) made safe against kills and full
    disks, with ``resume=True`` meaning "continue this work dir's run".

    * **Rotation writes first, removes after.** MMEngine removes the oldest
      kept checkpoint before it writes the new one; with
      ``max_keep_ckpts=1`` a full disk then leaves no checkpoint at all.
      Here the new checkpoint is written (atomically, see
      :class:`~mmseg_hosvd.engine.AtomicLocalBackend`), then
      ``last_checkpoint`` (atomically), and only then the checkpoints
      beyond ``max_keep_ckpts`` are removed.
    * **A write that fails changes nothing.** The partial file is removed,
      ``last_checkpoint`` and the kept checkpoints stay, and the run stops
      with :class:`CheckpointWriteError` naming the file, the reason and the
      checkpoint kept.
    * **Leftovers of killed writes** (hidden ``.<name>.<random>.tmp``
      files) in the work dir and the checkpoint dir are removed when a run
      starts, and so are older numbered checkpoints of a resumed run that a
      kill between the write and the removal left behind.
    * **Resume resumes.** MMEngine resumes from ``load_from`` whenever it is
      set, so a fine-tuning config (``load_from`` = the calibrated
      checkpoint) with ``resume=True`` would restart from the calibration.
      Here ``resume=True`` resumes from the work dir's latest whole
      checkpoint (:func:`~mmseg_hosvd.engine.latest_checkpoint
      .latest_checkpoint`: ``last_checkpoint``, or the latest numbered file
      that reads when the pointer is empty or broken); with none, the run
      starts anew, from ``load_from`` if set. ``load_from`` only ever
      starts a new run.
    """

    def before_run(self, runner) -> None:
        """Removes leftovers of killed writes and picks what to resume."""
        directory = self._checkpoint_dir(runner)
        if is_main_process():
            removed = remove_stale_temporaries(runner.work_dir)
            if directory != runner.work_dir:
                removed += remove_stale_temporaries(directory)
            if removed:
                runner.logger.info(
                    'SafeCheckpointHook: removed the temporary files of '
                    f'killed checkpoint writes: {removed}')
        if runner._resume:
            self._resolve_resume(runner, directory)

    def _checkpoint_dir(self, runner) -> str:
        """Where the checkpoints go, as ``before_train`` will join
        ``out_dir``."""
        if self.out_dir is None or self.out_dir == runner.work_dir:
            return runner.work_dir
        return osp.join(self.out_dir,
                        osp.basename(runner.work_dir.rstrip(osp.sep)))

    @staticmethod
    def _resolve_resume(runner, directory: str) -> None:
        latest, problem = latest_checkpoint(runner.work_dir, directory)
        if problem:
            runner.logger.warning(f'SafeCheckpointHook: {problem}; '
                                  'looking for the latest whole checkpoint')
        load_from = runner._load_from
        if latest is not None:
            runner.logger.info(
                f'SafeCheckpointHook: resuming {runner.work_dir} from its '
                f'latest checkpoint {latest}' +
                (f' (load_from {load_from} only starts a new run)'
                 if load_from and load_from != latest else ''))
            runner._load_from = latest
            return
        runner._resume = False
        runner.logger.warning(
            f'SafeCheckpointHook: resume was asked, but {runner.work_dir} '
            'holds no checkpoint: starting a new run' +
            (f' from load_from {load_from}' if load_from else ''))

    def before_train(self, runner) -> None:
        """As CheckpointHook, then, when resuming, removes the numbered
        checkpoints older than the first kept one."""
        super().before_train(runner)
        if (runner._resume and self.max_keep_ckpts > 0
                and self.keep_ckpt_ids and is_main_process()):
            self._remove_unkept(runner)

    def _remove_unkept(self, runner) -> None:
        """A kill between a write and its rotation leaves them."""
        first = min(self.keep_ckpt_ids)
        for step, path in numbered_checkpoints(self.out_dir):
            if step < first and osp.basename(path) == (
                    self.filename_tmpl.format(step)):
                self.file_backend.remove(path)
                runner.logger.info(
                    f'SafeCheckpointHook: removed {path}, which rotation '
                    'had dropped before the run was stopped')

    def _save_checkpoint_with_step(self, runner, step, meta):
        """Writes checkpoint ``step``, then the pointer, then rotates."""
        hub = runner.message_hub
        previous_ids = list(getattr(self, 'keep_ckpt_ids', ()))
        previous_last = self.last_ckpt
        previous_hub_last = hub.get_info('last_ckpt')
        dropped = []
        if self.max_keep_ckpts > 0 and not (previous_ids
                                            and previous_ids[-1] == step):
            ids = previous_ids + [step]
            dropped = ids[:-self.max_keep_ckpts]
            self.keep_ckpt_ids = deque(ids[-self.max_keep_ckpts:],
                                       self.max_keep_ckpts)
            hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        hub.update_info('last_ckpt', self.last_ckpt)
        pointer = osp.join(runner.work_dir, POINTER)
        kept = read_pointer(runner.work_dir) if is_main_process() else None
        written = False
        try:
            runner.save_checkpoint(
                self.out_dir,
                filename,
                self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler,
                meta=meta,
                by_epoch=self.by_epoch,
                backend_args=self.backend_args,
                **self.args)
            written = True
            if is_main_process():
                write_atomically(pointer, self.last_ckpt.encode())
        except OSError as error:
            if written and self.file_backend.isfile(self.last_ckpt):
                self.file_backend.remove(self.last_ckpt)
            if self.max_keep_ckpts > 0:
                self.keep_ckpt_ids = deque(previous_ids, self.max_keep_ckpts)
                hub.update_info('keep_ckpt_ids', previous_ids)
            self.last_ckpt = previous_last
            hub.update_info('last_ckpt', previous_hub_last)
            raise self._write_error(runner, filename, error, kept) from error
        if is_main_process():
            for old in dropped:
                path = self.file_backend.join_path(
                    self.out_dir, self.filename_tmpl.format(old))
                if self.file_backend.isfile(path):
                    self.file_backend.remove(path)

    def _write_error(self, runner, filename: str, error: OSError,
                     kept) -> CheckpointWriteError:
        reason = error.strerror or str(error)
        code = errno.errorcode.get(error.errno, '') if error.errno else ''
        path = self.file_backend.join_path(self.out_dir, filename)
        keeps = (f'The previous checkpoint {kept} and {POINTER} naming it '
                 'are kept' if kept else
                 'No earlier checkpoint of this run exists')
        message = (f'Saving checkpoint {path} at iteration {runner.iter + 1} '
                   f'failed: {reason}{f" ({code})" if code else ""}. '
                   'Nothing was removed. ' + keeps + '. Free space in '
                   f'{self.out_dir} and continue with --resume.')
        runner.logger.log(logging.ERROR, message)
        return CheckpointWriteError(error.errno, message)


def use_safe_checkpoint_hook(cfg) -> bool:
    """Makes the checkpoint hook of ``cfg`` a :class:`SafeCheckpointHook`.

    A config that names MMEngine's ``CheckpointHook`` (mmseg's own
    ``default_runtime.py`` does), or sets no checkpoint hook at all (the
    Runner then adds one saving every iteration), gets the safe hook with
    the same arguments; one set to None, or to another hook, is left alone.

    Args:
        cfg: A training config (changed in place).

    Returns:
        Whether it was changed.
    """
    hooks = cfg.setdefault('default_hooks', {})
    if 'checkpoint' not in hooks:
        hooks['checkpoint'] = dict(
            type='mmseg.SafeCheckpointHook', interval=1)
        return True
    hook = hooks['checkpoint']
    if hook is None or hook.get('type') not in ('CheckpointHook',
                                                CheckpointHook):
        return False
    hook['type'] = 'mmseg.SafeCheckpointHook'
    return True
