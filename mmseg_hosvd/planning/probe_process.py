"""Probe runs in processes forked from one that has imported the training
code, or, where CUDA is available, in new interpreters.

A probe is ``tools/train.py`` in a process of its own, so that one
set-up's allocator state and MMEngine's global registries and message hub
cannot reach another's. Started as a new interpreter, each probe spent
about 4 s importing torch, MMEngine, mmseg and this package before it
trained (DeepLabV3's probes took 10-13 s that way). Here the probes are
forked from one server process (``multiprocessing``'s 'forkserver') that
imported them once and trains nothing itself; each child gets its own
copy of that state, and is then made to start as a new interpreter
would: the caller's environment and thread count, the script's
directory first on ``sys.path``, fresh seeds for Python's and NumPy's
global generators, the script run as ``__main__`` with its own
``sys.argv``, its output in its own log and its own exit handlers (not
the server's) run. The peaks a probe reads are its step's allocation
events, and its step times were the same as a new interpreter's within
their run-to-run spread (DeepLabV3, three set-ups, three runs each way).

Where CUDA is available, each probe is a new interpreter instead
(``subprocess``), as it is when ``MMSEG_HOSVD_PROBE_START=new``: a
process that forks after CUDA was initialised, by PyTorch or by any
library it imported, leaves the child unable to use the GPU, and forked
probes have not been run on a GPU. The server still checks CUDA through
NVML (``PYTORCH_NVML_BASED_CUDA_CHECK``), so that MMEngine's and mmcv's
``torch.cuda.is_available()`` at import does not initialise it there.
As with any ``multiprocessing`` start method but 'fork', the caller's
main module is imported in each forked child: a script that starts
probes needs ``if __name__ == '__main__':``, as ``tools/plan.py`` has.
"""
import atexit
import multiprocessing
import multiprocessing.forkserver
import os
import os.path as osp
import random
import runpy
import subprocess
import sys
import threading
from multiprocessing.connection import wait
from typing import Dict, Optional, Sequence

#: The modules a probe needs before it trains, imported once in the server.
PRELOAD = ['mmseg_hosvd', 'mmseg_hosvd.protocol.testing', 'mmengine.runner']
#: Makes ``torch.cuda.is_available()`` ask NVML instead of initialising
#: CUDA (PyTorch's documented remedy for CUDA in forked processes).
NVML_CHECK = 'PYTORCH_NVML_BASED_CUDA_CHECK'
#: How probes start: 'fork' (from the server; the default without CUDA)
#: or 'new' (each a new interpreter; the default with CUDA).
START_VARIABLE = 'MMSEG_HOSVD_PROBE_START'


#: Serialises starting, polling and reaping probes: ``Process.start``
#: polls every other child, and two threads reading one child's exit code
#: from the forkserver would leave one of them with 255.
_LOCK = threading.Lock()


def _context():
    """The forkserver context, the training code preloaded."""
    context = multiprocessing.get_context('forkserver')
    context.set_forkserver_preload(PRELOAD)
    return context


def forks_probes() -> bool:
    """Whether probes fork from the server, or start as new interpreters.

    Returns:
        The choice of :data:`START_VARIABLE` ('fork' or 'new') when set,
        else whether CUDA is unavailable.

    Raises:
        ValueError: For another value of the variable, naming it.
    """
    choice = os.environ.get(START_VARIABLE)
    if choice is None:
        import torch
        return not torch.cuda.is_available()
    if choice not in ('fork', 'new'):
        raise ValueError(f"{START_VARIABLE} must be 'fork' or 'new', got "
                         f'{choice!r}')
    return choice == 'fork'


def start_server() -> None:
    """Starts the process the probes fork from, where they fork.

    It does not wait for it: its imports then run while the caller gets
    ready (reads the config, times bfloat16) instead of before the first
    probe; :func:`run_script` starts it where this was not called. Where
    probes start as new interpreters (:func:`forks_probes`) it does
    nothing.

    Raises:
        ValueError: For a bad :data:`START_VARIABLE`.
    """
    if not forks_probes():
        return
    with _LOCK:
        _context()
        saved = os.environ.get(NVML_CHECK)
        os.environ[NVML_CHECK] = '1'
        try:
            multiprocessing.forkserver.ensure_running()
        finally:
            if saved is None:
                del os.environ[NVML_CHECK]
            else:
                os.environ[NVML_CHECK] = saved


def _start_as_a_new_interpreter(script: str, argv: Sequence[str],
                                environment: Dict[str, str]) -> None:
    """What a new interpreter would have that the server's copy has not."""
    import numpy
    import torch
    os.environ.clear()
    os.environ.update(environment)
    threads = environment.get('OMP_NUM_THREADS', '')
    if threads.isdigit() and int(threads) > 0:
        # the server read the variable when it imported torch, not now; a
        # new interpreter's MKL caps it at the cores (physical ones, which
        # the CPU count does not tell apart from logical ones)
        torch.set_num_threads(min(int(threads), os.cpu_count() or 1))
    random.seed()
    numpy.random.seed()
    sys.argv = [script, *argv]
    sys.path[0] = osp.dirname(osp.abspath(script))


def _train(script: str, argv: Sequence[str], log: str,
           environment: Dict[str, str]) -> None:
    """The child: output to ``log``, started as a new interpreter would
    be, ``script`` run as ``__main__``, its exit handlers run."""
    descriptor = os.open(log, os.O_WRONLY | os.O_TRUNC)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    os.close(descriptor)
    # the server's exit handlers are not the probe's
    atexit._clear()
    try:
        _start_as_a_new_interpreter(script, argv, environment)
        runpy.run_path(script, run_name='__main__')
    finally:
        atexit._run_exitfuncs()


def _run_new_interpreter(script: str, argv: Sequence[str], log: str,
                         timeout_s: float, environment: Dict[str, str]
                         ) -> int:
    """Runs ``script`` in a new interpreter, output to ``log``; its exit
    code, or ``subprocess.TimeoutExpired`` once it is killed."""
    with open(log, 'w') as out:
        process = subprocess.Popen([sys.executable, script, *argv],
                                   stdout=out, stderr=subprocess.STDOUT,
                                   env=environment)
    try:
        return process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


def run_script(script: str, argv: Sequence[str], log: str,
               timeout_s: float, threads: Optional[int] = None) -> int:
    """Runs a Python script in a probe process of its own and waits for
    it: forked from the server, or a new interpreter
    (:func:`forks_probes`).

    Args:
        script: The script's path (e.g. ``tools/train.py``).
        argv: Its arguments.
        log: The file its standard output and error go to (created
            here, before the process starts).
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
        ValueError: For a bad :data:`START_VARIABLE`.
    """
    with _LOCK:
        # start_server sets and removes the NVML variable under the lock
        environment = dict(os.environ)
    if threads is not None:
        environment.update(OMP_NUM_THREADS=str(threads),
                           MKL_NUM_THREADS=str(threads))
    if not forks_probes():
        return _run_new_interpreter(script, argv, log, timeout_s,
                                    environment)
    open(log, 'w').close()
    start_server()
    process = _context().Process(target=_train,
                                 args=(script, list(argv), log, environment))
    with _LOCK:
        process.start()
    finished = wait([process.sentinel], timeout_s)
    with _LOCK:
        if not finished:
            process.kill()
        process.join()
    if not finished:
        raise subprocess.TimeoutExpired([script, *argv], timeout_s)
    return process.exitcode
