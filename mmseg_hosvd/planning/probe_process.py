"""Probe runs in processes forked from one that has imported the training
code.

A probe is ``tools/train.py`` in a process of its own, so that one
set-up's allocator state and MMEngine's global registries and message hub
cannot reach another's. Started as a new interpreter, each probe spent
about 4 s (a third of a DeepLabV3 probe) importing torch, MMEngine, mmseg
and this package before it trained. Here the probes are forked from one
server process (``multiprocessing``'s 'forkserver') that imported them once
and trains nothing itself; each child
still gets its own copy of that state, the caller's environment and
thread count, runs the script as ``__main__`` with its own ``sys.argv``,
and writes its output to its own log. The peaks a probe reads are its
step's allocation events, and its step times were the same as a new
interpreter's within their run-to-run spread (DeepLabV3, three set-ups,
three runs each way). As with any ``multiprocessing`` start method but
'fork', a caller's main module is imported in the child: a script that
starts probes needs ``if __name__ == '__main__':``, as ``tools/plan.py``
has.
"""
import multiprocessing
import multiprocessing.forkserver
import os
import runpy
import subprocess
import sys
from typing import Dict, Optional, Sequence

#: The modules a probe needs before it trains, imported once in the server.
PRELOAD = ['mmseg_hosvd', 'mmseg_hosvd.protocol.testing', 'mmengine.runner']


def _context():
    """The forkserver context, the training code preloaded."""
    context = multiprocessing.get_context('forkserver')
    context.set_forkserver_preload(PRELOAD)
    return context


def start_server() -> None:
    """Starts the process the probes fork from, without waiting for it.

    Its imports then run while the caller gets ready (reads the config,
    times bfloat16) instead of before the first probe; :func:`run_script`
    starts it where this was not called.
    """
    _context()
    multiprocessing.forkserver.ensure_running()


def _train(script: str, argv: Sequence[str], log: str,
           environment: Dict[str, str]) -> None:
    """The child: the caller's environment and its thread count, output
    to ``log``, ``script`` run as ``__main__`` with ``argv``."""
    descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    os.close(descriptor)
    os.environ.clear()
    os.environ.update(environment)
    threads = environment.get('OMP_NUM_THREADS', '')
    if threads.isdigit() and int(threads) > 0:
        # the server read the variable when it imported torch, not now
        import torch
        torch.set_num_threads(int(threads))
    sys.argv = [script, *argv]
    runpy.run_path(script, run_name='__main__')


def run_script(script: str, argv: Sequence[str], log: str,
               timeout_s: float, threads: Optional[int] = None) -> int:
    """Runs a Python script in a forked probe process and waits for it.

    Args:
        script: The script's path (e.g. ``tools/train.py``).
        argv: Its arguments.
        log: The file its standard output and error go to.
        timeout_s: The most seconds it may run.
        threads: CPU threads of the run (``OMP_NUM_THREADS`` and
            ``MKL_NUM_THREADS``, and ``torch.set_num_threads``), or None
            for the caller's ``OMP_NUM_THREADS``. The run gets the
            caller's environment as it is now, not the server's.

    Returns:
        Its exit code (1 for an uncaught exception, whose traceback is in
        ``log``).

    Raises:
        subprocess.TimeoutExpired: When it ran out of time; it is killed.
    """
    environment = dict(os.environ)
    if threads is not None:
        environment.update(OMP_NUM_THREADS=str(threads),
                           MKL_NUM_THREADS=str(threads))
    process = _context().Process(target=_train,
                              args=(script, list(argv), log, environment))
    process.start()
    process.join(timeout_s)
    if process.is_alive():
        process.kill()
        process.join()
        raise subprocess.TimeoutExpired([script, *argv], timeout_s)
    return process.exitcode
