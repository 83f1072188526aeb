"""The protocol's stages as ``tools/`` processes, each skipped when done.

A training stage is skipped when its final checkpoint exists and is up to
date (:func:`~mmseg_hosvd.protocol.matrix.stale_reason`), a test when its
record was written after the checkpoint it tests.
"""
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Callable, List, Optional

from .matrix import final_checkpoint, stale_reason, work_dir

#: ``--cfg-options`` that train without validating. MMEngine validates at
#: the last iteration whatever ``val_interval`` says; without a validation
#: loop it does not.
NO_VALIDATION = ['val_cfg=None', 'val_dataloader=None', 'val_evaluator=None']


def run_tool(args: List[str], log_file: str,
             log: Callable[[str], None]) -> None:
    """Runs a tools/ script, logging to a file and echoing progress lines.

    Args:
        args: The script and its arguments.
        log_file: Where the full output goes.
        log: Receives the progress lines (iterations, metrics).

    Raises:
        RuntimeError: If the process fails; the message holds the end of
            its output.
    """
    os.makedirs(osp.dirname(log_file) or '.', exist_ok=True)
    tail: List[str] = []
    with open(log_file, 'w') as out:
        process = subprocess.Popen([sys.executable] + args,
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT,
                                   text=True)
        for line in process.stdout:
            out.write(line)
            tail = (tail + [line])[-40:]
            if 'Iter(' in line or 'mIoU:' in line:
                log('  ' + line.split(' - INFO - ')[-1].strip()[:150])
        code = process.wait()
    if code != 0:
        raise RuntimeError(f'{" ".join(args)} failed (exit {code}); log: '
                           f'{log_file}\n' + ''.join(tail))


def _must_train(config: str, checkpoint: str, force: bool,
                log: Callable[[str], None]) -> bool:
    """Whether ``checkpoint`` must be trained (again); logs why not, or
    why it is stale."""
    if force or not osp.isfile(checkpoint):
        return True
    reason = stale_reason(config, checkpoint)
    if reason is None:
        log(f'train: reusing {checkpoint}')
        return False
    log(f'train: {checkpoint} is {reason}; training again')
    return True


def ensure_trained(config: str, log: Callable[[str], None],
                   force: bool = False, validate: bool = True,
                   test: bool = False) -> str:
    """Trains ``config`` unless its final checkpoint exists and is up to
    date (see :func:`~mmseg_hosvd.protocol.matrix.stale_reason`).

    Args:
        config: The config to train.
        log: Receives progress messages.
        force: Train again even if the checkpoint is up to date.
        validate: Run the config's validation during training; callers
            that test the final checkpoint next pass False (the same
            numbers, computed once).
        test: Test the final checkpoint in the training process
            (``tools/train.py --test``, which writes the test record).

    Returns:
        The final checkpoint path.
    """
    checkpoint = final_checkpoint(config)
    if not _must_train(config, checkpoint, force, log):
        return checkpoint
    args = ['tools/train.py', config]
    if test:
        args.append('--test')
    if not validate:
        args += ['--cfg-options'] + NO_VALIDATION
    log(f"train: python {' '.join(args)}")
    run_tool(args, osp.join(work_dir(config), 'train.log'), log)
    if not osp.isfile(checkpoint):
        raise RuntimeError(f'{config} finished without writing {checkpoint}')
    return checkpoint


def _record_path(config: str) -> str:
    return osp.join(work_dir(config), 'test_results.json')


def _current_record(config: str, checkpoint: str) -> Optional[dict]:
    """The test record of ``checkpoint``, if written after it."""
    record_path = _record_path(config)
    if not osp.isfile(record_path):
        return None
    with open(record_path) as f:
        try:
            record = json.load(f)
        except json.JSONDecodeError:
            return None  # cut short: tested again
    tested = record.get('checkpoint')
    if (tested and osp.abspath(tested) == osp.abspath(checkpoint)
            and osp.getmtime(record_path) >= osp.getmtime(checkpoint)):
        return record
    return None


def ensure_tested(config: str, checkpoint: str, log: Callable[[str], None],
                  force: bool = False) -> dict:
    """Tests ``checkpoint`` unless a record for it exists.

    Args:
        config: The config to test.
        checkpoint: Its checkpoint.
        log: Receives progress messages.
        force: Test again even if a record exists.

    Returns:
        The test record (see
        :func:`mmseg_hosvd.protocol.reporting.checkpoint_record`).
    """
    record = None if force else _current_record(config, checkpoint)
    if record is not None:
        log(f'test: reusing {_record_path(config)}')
        return record
    log(f'test: python tools/test.py {config} {checkpoint}')
    run_tool(['tools/test.py', config, checkpoint],
             osp.join(work_dir(config), 'test.log'), log)
    with open(_record_path(config)) as f:
        return json.load(f)


def ensure_trained_and_tested(config: str, log: Callable[[str], None],
                              force: bool = False) -> dict:
    """Trains ``config`` without validation and tests its final checkpoint,
    each unless done and up to date; when it trains, the test runs in the
    same process (``tools/train.py --test``), which saves a process start.

    Args:
        config: The config to train and test.
        log: Receives progress messages.
        force: Train and test again even if both are up to date.

    Returns:
        The test record of the final checkpoint.
    """
    checkpoint = final_checkpoint(config)
    if _must_train(config, checkpoint, force, log):
        ensure_trained(config, log, force=True, validate=False, test=True)
        record = _current_record(config, checkpoint)
        if record is None:
            raise RuntimeError(f'tools/train.py --test wrote no test record '
                               f'of {checkpoint} in {_record_path(config)}')
        return record
    return ensure_tested(config, checkpoint, log)
