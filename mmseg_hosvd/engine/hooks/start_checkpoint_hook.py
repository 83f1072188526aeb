"""Keep, with every checkpoint, which checkpoint the run started from."""
import os
import os.path as osp
import platform

import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ...utils.file_digest import file_digest
from .checkpoint_fit_hook import loaded_checkpoint_path

#: Checkpoint-meta key of the record.
START_KEY = 'start_checkpoint'


def processor_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform``
    says."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_record() -> dict:
    """The machine a checkpoint was saved on: processor, CPU count, torch
    version and, with CUDA, the GPU."""
    record = dict(processor=processor_name(), cpus=os.cpu_count(),
                  torch=str(torch.__version__))
    if torch.cuda.is_available():
        record['gpu'] = torch.cuda.get_device_name()
    return record


def _inside(path: str, folder: str) -> bool:
    return osp.commonpath([osp.abspath(path), osp.abspath(folder)
                           ]) == osp.abspath(folder)


@HOOKS.register_module()
class StartCheckpointHook(Hook):
    """Writes ``start_checkpoint`` into every checkpoint's meta: the path
    and SHA-256 of the checkpoint the run loaded (``load_from``; None
    when it loaded none) and the machine it trained on.

    Seeds of a comparison are paired only between runs from the same
    start, and ``tools/compare.py`` tells apart the runs of one model that
    started from different checkpoints (a calibration made again, or on
    another machine), whose mIoU differences mean nothing. A resumed run
    keeps the start of the run it resumes (a checkpoint in its own work
    dir). The protocol's configs set it in ``default_hooks`` (key
    ``start_checkpoint``).
    """

    priority = 'LOW'

    def __init__(self):
        self.start = None

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Records the loaded checkpoint, or, when resuming one of this
        work dir's, the start it recorded."""
        path = loaded_checkpoint_path(runner)
        if getattr(runner, '_resume', False) and _inside(path,
                                                         runner.work_dir):
            record = (checkpoint.get('meta') or {}).get(START_KEY) or {}
            self.start = record.get('start')
        else:
            self.start = dict(path=path, sha256=file_digest(path)
                              if osp.isfile(path) else None)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Writes the record to the checkpoint's meta."""
        checkpoint.setdefault('meta', {})[START_KEY] = dict(
            start=self.start, machine=machine_record())
