"""Short real training runs of a set-up, and what they measured.

Each probe is ``tools/train.py`` in a process of its own (so one set-up's
allocator state cannot lower or raise another's peak; forked from a
server that imported the training code once, or a new interpreter where
CUDA is available, :mod:`.probe_process`), on the user's
config with the set-up's overrides, for a few iterations from the user's
checkpoint: the ``StepPeakMemoryHook`` profiles the second iteration, the
later ones give the step time, and a compressed set-up's one value logs its
weight-gradient error on the first batch (an allocation whose grid is that
value), of the fine-tuned layers' gradients taken together. A probe
writes no checkpoint: ``ProbeRecordHook`` writes what it measured to a
small file.
"""
import json
import os
import os.path as osp
import shutil
import threading
from typing import List, Optional, Sequence

from mmengine.config import Config

from ..engine.hooks.probe_record_hook import PROBE_RECORD_FILE
from ..engine.hooks.step_peak_memory_hook import STEP_PEAK_KEY
from ..protocol.reporting import median
from .autocast_error import AUTOCAST_ERROR_KEY
from .probe_process import run_script
from .recommendation import Measured
from .setups import SetUp, setup_overrides

#: The iteration whose whole-step peak is profiled (the first creates the
#: optimizer state).
PROFILED_ITERATION = 2
HEADER = '# Written by tools/plan.py.'
#: Held while a probe's config is read and written: MMEngine parses
#: configs with ``ast``, which CPython 3.11.7 does not run safely in two
#: threads at once ('AST constructor recursion depth mismatch'), and
#: ``tools/plan.py --jobs N`` starts probes from N threads.
_CONFIG_LOCK = threading.Lock()


def config_text(config: str, overrides: dict, comment: str = '') -> str:
    """A config file that is ``config`` with ``overrides`` merged in.

    Args:
        config: The base config's path (written as an absolute path).
        overrides: Keys to merge (lists, such as ``custom_hooks``, replace).
        comment: Lines to put under the header, without '#'.
    """
    body = Config(overrides).pretty_text
    notes = ''.join(f'# {line}\n' for line in comment.splitlines())
    return (f'{HEADER}\n{notes}_base_ = {osp.abspath(config)!r}\n'
            f'{body}\n')


def probe_options(iters: int, load_from: Optional[str]) -> List[str]:
    """``--cfg-options`` of a probe run.

    Args:
        iters: Training iterations.
        load_from: The checkpoint to start from, or None for the config's.

    Returns:
        Options for ``iters`` iterations, no validation, the step peak
        profiled, every iteration logged, no checkpoint, and what the run
        measured written by ``ProbeRecordHook``.
    """
    options = [
        f'train_cfg.max_iters={iters}', 'val_cfg=None', 'val_dataloader=None',
        'val_evaluator=None', 'default_hooks.step_peak.type='
        'StepPeakMemoryHook',
        f'default_hooks.step_peak.iteration={PROFILED_ITERATION}',
        'default_hooks.logger.interval=1', 'default_hooks.checkpoint=None',
        'default_hooks.probe_record.type=ProbeRecordHook'
    ]
    if load_from is not None:
        options.append(f'load_from={load_from}')
    return options


def probe_order(setups: Sequence[SetUp]) -> List[SetUp]:
    """The set-ups in the order their probes start.

    Those that allocate come first: they measure every candidate of their
    grid on every layer, the longest probes (Swin-T UPerNet, two at a
    time on the idle first machine: 18-20 s against 8-12 s). With
    several probes at a time, the longest started last would run while
    the other workers have nothing left to do.

    Args:
        setups: The set-ups, in the order of the planner's table.

    Returns:
        The allocating ones, then the others, each in the given order.
    """
    return sorted(setups, key=lambda setup: 'allocate' not in setup.options)


def probe_threads(jobs: int, cpus: Optional[int] = None) -> Optional[int]:
    """The CPU threads each probe gets when ``jobs`` run at once.

    Args:
        jobs: Probes running at the same time (at least 1).
        cpus: The machine's CPU count (default ``os.cpu_count()``).

    Returns:
        None for one probe at a time (it keeps the caller's setting), else
        the CPUs shared evenly, at least one each.

    Raises:
        ValueError: For ``jobs`` below 1.
    """
    if jobs < 1:
        raise ValueError(f'jobs must be >= 1, got {jobs}')
    if jobs == 1:
        return None
    return max(1, (cpus or os.cpu_count() or 1) // jobs)


def run_probe(train_script: str, config: str, setup: SetUp, work_dir: str,
              iters: int, load_from: Optional[str], timeout_s: float,
              threads: Optional[int] = None) -> Measured:
    """Runs one probe in a process of its own (:func:`~.probe_process.
    run_script`) and reads what it measured.

    Args:
        train_script: The path of ``tools/train.py``.
        config: The user's config.
        setup: The set-up to measure.
        work_dir: The probe's work dir (emptied first, so that nothing is
            resumed).
        iters: Training iterations, at least 3 (one for the step time after
            the profiled one).
        load_from: The checkpoint to start from, or None for the config's.
        timeout_s: The most seconds the probe may run.
        threads: CPU threads of the probe (``OMP_NUM_THREADS`` and
            ``MKL_NUM_THREADS``), or None to keep the caller's.

    Raises:
        ValueError: For ``iters`` too few to time a step.
        RuntimeError: When the run fails, with the end of its log.
    """
    if iters <= PROFILED_ITERATION:
        raise ValueError(f'iters must be > {PROFILED_ITERATION}, got '
                         f'{iters}')
    shutil.rmtree(work_dir, ignore_errors=True)
    os.makedirs(work_dir)
    path = osp.join(work_dir, f'{setup.name}.py')
    with _CONFIG_LOCK, open(path, 'w') as f:
        f.write(config_text(config, setup_overrides(
            Config.fromfile(config), setup, probe=True)))
    log = osp.join(work_dir, 'probe.log')
    code = run_script(train_script, [path, '--work-dir', work_dir,
                                     '--cfg-options'] +
                      probe_options(iters, load_from), log, timeout_s,
                      threads)
    if code != 0:
        with open(log) as f:
            tail = ''.join(f.readlines()[-15:])
        raise RuntimeError(f'the probe of set-up {setup.name!r} failed '
                           f'(exit {code}); the end of {log}:\n{tail}')
    return read_probe(work_dir, setup)


def read_probe(work_dir: str, setup: SetUp) -> Measured:
    """What a finished probe measured.

    Args:
        work_dir: The probe's work dir, where its ``ProbeRecordHook``
            wrote the record.
        setup: The set-up it ran.

    Returns:
        Its whole-step peak, the median time of the steps after the
        profiled one, and its gradient error (:func:`probe_error`).

    Raises:
        RuntimeError: When the record is missing (the run had no
            ``ProbeRecordHook``, :func:`probe_options`), unreadable, or
            has no whole-step peak (the run ended before its profiled
            iteration).
    """
    path = osp.join(work_dir, PROBE_RECORD_FILE)
    if not osp.isfile(path):
        raise RuntimeError(f'{path} is missing: the run did not train with '
                           'a ProbeRecordHook to its end')
    try:
        with open(path) as f:
            record = json.load(f)
        meta, times = record['meta'], record['train_time']
        peak = (meta.get(STEP_PEAK_KEY) or {}).get('peak_increment_mb')
        if peak is None:
            raise RuntimeError(f'{path} has no {STEP_PEAK_KEY}: the probe '
                               'did not reach its profiled iteration')
        return Measured(setup.name, setup.exact, float(peak),
                        median(times[PROFILED_ITERATION:]),
                        probe_error(meta, setup))
    except (ValueError, KeyError, TypeError, AttributeError,
            IndexError) as error:
        raise RuntimeError(f'{path} is not a probe record: {error!r}'
                           ) from error


def probe_error(meta: dict, setup: SetUp) -> Optional[float]:
    """The relative weight-gradient error a probe measured, of the
    fine-tuned layers' gradients taken as one vector.

    Args:
        meta: The meta of the probe's record (a checkpoint's keys).
        setup: The set-up it ran.

    Returns:
        0 for an exact set-up; else the compressed layers' error (its
        allocation's ``allocation_whole_error``, relative to the exact
        gradient) plus, under autocast, autocast's
        (``AutocastErrorHook``'s ``whole_relative_error``, relative to the
        float32 gradient of the run's layers, compressed where the run
        compresses): the sum bounds their joint error up to the product
        of the two; None when a part was not measured.
    """
    if setup.exact:
        return 0.0
    parts = []
    if setup.method != 'vanilla':
        parts.append((meta.get('finetune') or {}).get(
            'allocation_whole_error'))
    if setup.autocast:
        parts.append((meta.get(AUTOCAST_ERROR_KEY) or {}).get(
            'whole_relative_error'))
    if not parts or any(part is None for part in parts):
        return None
    return float(sum(parts))
