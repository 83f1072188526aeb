"""The protocol's stages as ``tools/`` processes, each skipped when done.

A training stage is skipped when its final checkpoint exists and is up to
date (:func:`~mmseg_hosvd.protocol.matrix.stale_reason`), a test when its
record was written after the checkpoint it tests. A stage given a ``seed``
trains with ``--cfg-options randomness.seed=N`` in the work dir of that seed
(:func:`~mmseg_hosvd.protocol.matrix.work_dir`), and is skipped or found
stale there, on its own.
"""
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Callable, List, Optional

from .matrix import final_checkpoint, seed_options, stale_reason, work_dir

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
                log: Callable[[str], None], seed: Optional[int]) -> bool:
    """Whether ``checkpoint`` must be trained (again); logs why not, or
    why it is stale."""
    if force or not osp.isfile(checkpoint):
        return True
    reason = stale_reason(config, checkpoint, seed)
    if reason is None:
        log(f'train: reusing {checkpoint}')
        return False
    log(f'train: {checkpoint} is {reason}; training again')
    return True


def ensure_trained(config: str, log: Callable[[str], None],
                   force: bool = False, validate: bool = True,
                   test: bool = False, seed: Optional[int] = None) -> str:
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
        seed: Train with this ``randomness.seed``, in its own work dir;
            None for the config's seed and work dir.

    Returns:
        The final checkpoint path.
    """
    checkpoint = final_checkpoint(config, seed=seed)
    if not _must_train(config, checkpoint, force, log, seed):
        return checkpoint
    args = ['tools/train.py', config]
    if seed is not None:
        args += ['--work-dir', work_dir(config, seed=seed)]
    if test:
        args.append('--test')
    options = seed_options(seed) + ([] if validate else NO_VALIDATION)
    if options:
        args += ['--cfg-options'] + options
    log(f"train: python {' '.join(args)}")
    run_tool(args, osp.join(work_dir(config, seed=seed), 'train.log'), log)
    if not osp.isfile(checkpoint):
        raise RuntimeError(f'{config} finished without writing {checkpoint}')
    return checkpoint


def _record_path(config: str, seed: Optional[int]) -> str:
    return osp.join(work_dir(config, seed=seed), 'test_results.json')


def _current_record(config: str, checkpoint: str,
                    seed: Optional[int]) -> Optional[dict]:
    """The test record of ``checkpoint``, if written after it (and, for a
    seed, recording that seed)."""
    record_path = _record_path(config, seed)
    if not osp.isfile(record_path):
        return None
    with open(record_path) as f:
        try:
            record = json.load(f)
        except json.JSONDecodeError:
            return None  # cut short: tested again
    tested = record.get('checkpoint')
    if (tested and osp.abspath(tested) == osp.abspath(checkpoint)
            and osp.getmtime(record_path) >= osp.getmtime(checkpoint)
            and (seed is None or record.get('seed') == seed)):
        return record
    return None


def ensure_tested(config: str, checkpoint: str, log: Callable[[str], None],
                  force: bool = False, seed: Optional[int] = None) -> dict:
    """Tests ``checkpoint`` unless a record for it exists.

    Args:
        config: The config to test.
        checkpoint: Its checkpoint.
        log: Receives progress messages.
        force: Test again even if a record exists.
        seed: The seed the checkpoint was trained with, whose work dir
            holds the record; None for the config's own.

    Returns:
        The test record (see
        :func:`mmseg_hosvd.protocol.reporting.checkpoint_record`).
    """
    record = None if force else _current_record(config, checkpoint, seed)
    if record is not None:
        log(f'test: reusing {_record_path(config, seed)}')
        return record
    args = ['tools/test.py', config, checkpoint]
    if seed is not None:
        args += ['--work-dir', work_dir(config, seed=seed)]
    log(f"test: python {' '.join(args)}")
    run_tool(args, osp.join(work_dir(config, seed=seed), 'test.log'), log)
    with open(_record_path(config, seed)) as f:
        return json.load(f)


def ensure_trained_and_tested(config: str, log: Callable[[str], None],
                              force: bool = False,
                              seed: Optional[int] = None) -> dict:
    """Trains ``config`` without validation and tests its final checkpoint,
    each unless done and up to date; when it trains, the test runs in the
    same process (``tools/train.py --test``), which saves a process start.

    Args:
        config: The config to train and test.
        log: Receives progress messages.
        force: Train and test again even if both are up to date.
        seed: Train with this ``randomness.seed``, in its own work dir;
            None for the config's seed and work dir.

    Returns:
        The test record of the final checkpoint.
    """
    checkpoint = final_checkpoint(config, seed=seed)
    if _must_train(config, checkpoint, force, log, seed):
        ensure_trained(config, log, force=True, validate=False, test=True,
                       seed=seed)
        record = _current_record(config, checkpoint, seed)
        if record is None:
            raise RuntimeError(f'tools/train.py --test wrote no test record '
                               f'of {checkpoint} in '
                               f'{_record_path(config, seed)}')
        return record
    return ensure_tested(config, checkpoint, log, seed=seed)
