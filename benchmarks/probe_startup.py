"""Start-up of a planner probe: a new interpreter against a fork of the
probe server, as ratios measured in one run.

``tools/plan.py`` runs each probe as ``tools/train.py`` forked from a
server that imported the training code once
(``mmseg_hosvd.planning.probe_process``). Each round here starts
``tools/train.py --help`` (it imports everything a probe trains with, then
exits) once as a new interpreter and once forked from that server, in
alternating order, and prints the median seconds of each and their ratio.
The server's own start (its imports, once per planning) is timed apart.
It forks where CUDA is available too (``MMSEG_HOSVD_PROBE_START=fork``
while it runs), where the planner starts probes as new interpreters.

Usage::

    python benchmarks/probe_startup.py [--rounds 5] [--json PATH]
"""
import argparse
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time

from json_records import write_json

from mmseg_hosvd.planning.probe_process import (
    START_VARIABLE,
    run_script,
    start_server,
)

TRAIN = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools',
                 'train.py')


def new_interpreter(log: str) -> float:
    """Seconds of ``tools/train.py --help`` in a new interpreter."""
    start = time.perf_counter()
    with open(log, 'w') as out:
        code = subprocess.run([sys.executable, TRAIN, '--help'], stdout=out,
                              stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise RuntimeError(f'tools/train.py --help exited {code}: {log}')
    return time.perf_counter() - start


def forked(log: str) -> float:
    """Seconds of ``tools/train.py --help`` forked from the probe server."""
    start = time.perf_counter()
    code = run_script(TRAIN, ['--help'], log, 600)
    if code != 0:
        raise RuntimeError(f'tools/train.py --help exited {code}: {log}')
    return time.perf_counter() - start


def measure(rounds: int) -> dict:
    """The records of one run (see the module docstring)."""
    saved = os.environ.get(START_VARIABLE)
    os.environ[START_VARIABLE] = 'fork'
    try:
        return _measure(rounds)
    finally:
        if saved is None:
            del os.environ[START_VARIABLE]
        else:
            os.environ[START_VARIABLE] = saved


def _measure(rounds: int) -> dict:
    """:func:`measure` with the probes forked."""
    with tempfile.TemporaryDirectory() as folder:
        log = osp.join(folder, 'probe.log')
        start = time.perf_counter()
        start_server()
        forked(log)
        server_s = time.perf_counter() - start
        times = {'new_interpreter': [], 'forked': []}
        for i in range(rounds):
            order = (new_interpreter, forked) if i % 2 == 0 else (
                forked, new_interpreter)
            for run in order:
                times[run.__name__].append(run(log))
    medians = {name: statistics.median(t) for name, t in times.items()}
    return dict(rounds=rounds, server_start_s=server_s, times=times,
                new_interpreter_s=medians['new_interpreter'],
                forked_s=medians['forked'],
                ratio=medians['forked'] / medians['new_interpreter'])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--json', help='also write the record here')
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f'--rounds must be >= 1, got {args.rounds}')
    record = measure(args.rounds)
    print(f"start-up of tools/train.py, median of {record['rounds']} "
          f"round(s): new interpreter {record['new_interpreter_s']:.2f} s, "
          f"forked from the probe server {record['forked_s']:.2f} s "
          f"({record['ratio']:.2f}x, same run); the server's own start, "
          f"once per planning: {record['server_start_s']:.2f} s")
    if args.json:
        write_json(args.json, record)
    return record


if __name__ == '__main__':
    main()
