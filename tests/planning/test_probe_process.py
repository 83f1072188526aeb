"""Probe processes forked from the server that imported the training code,
or new interpreters: each runs its script as a new interpreter would, with
the caller's environment, its own log, exit code and time limit."""
import os
import subprocess

import pytest

from mmseg_hosvd.planning.probe_process import (
    START_VARIABLE,
    run_script,
    start_server,
)

SCRIPT = '''import atexit, os, random, sys
print('preloaded', 'torch' in sys.modules)
if sys.argv[1] == 'hang':
    open(sys.argv[2], 'w').write(str(os.getpid()))
    import time
    time.sleep(60)
import numpy, torch
print('name', __name__, 'argv', sys.argv[1:])
print('threads', torch.get_num_threads(), os.environ.get('OMP_NUM_THREADS'),
      os.environ.get('MKL_NUM_THREADS'), os.environ.get('PROBE_MARK'))
print('path0', sys.path[0])
print('draws', random.random(), numpy.random.rand())
atexit.register(lambda: print('exit handler ran', flush=True))
if sys.argv[1] == 'fail':
    raise ValueError('the probe failed here')
sys.exit(int(sys.argv[1]))
'''


def line(text, start):
    return next(row for row in text.splitlines() if row.startswith(start))


@pytest.fixture(autouse=True, params=['fork', 'new'])
def start(request, monkeypatch):
    """Every test for both ways a probe starts."""
    monkeypatch.setenv(START_VARIABLE, request.param)
    return request.param


@pytest.fixture
def script(tmp_path):
    path = tmp_path / 'probe_script.py'
    path.write_text(SCRIPT)
    return str(path)


def test_a_script_runs_as_main_with_its_arguments(script, tmp_path,
                                                  monkeypatch):
    start_server()
    monkeypatch.setenv('PROBE_MARK', 'set-after-the-server-started')
    log = tmp_path / 'probe.log'
    assert run_script(script, ['0', 'x'], str(log), 60, threads=2) == 0
    text = log.read_text()
    assert "name __main__ argv ['0', 'x']" in text
    used = min(2, os.cpu_count())
    assert f'threads {used} 2 2 set-after-the-server-started' in text
    assert line(text, 'path0') == f'path0 {tmp_path}'
    assert 'exit handler ran' in text


def test_each_probe_draws_its_own_random_numbers(script, tmp_path):
    """As in new interpreters, Python's and NumPy's global generators are
    seeded afresh, not copied from the server."""
    draws = []
    for name in ('first.log', 'second.log'):
        assert run_script(script, ['0'], str(tmp_path / name), 60) == 0
        draws.append(line((tmp_path / name).read_text(), 'draws'))
    python, numpy = zip(*(d.split()[1:] for d in draws), strict=True)
    assert python[0] != python[1] and numpy[0] != numpy[1]


@pytest.mark.parametrize('threads', [None, 3])
def test_the_caller_s_thread_count_applies(script, tmp_path, monkeypatch,
                                           threads):
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    monkeypatch.setenv('MKL_NUM_THREADS', '1')
    log = tmp_path / 'probe.log'
    assert run_script(script, ['4'], str(log), 60, threads) == 4
    count = threads or 1
    used = min(count, os.cpu_count())  # what a new interpreter takes
    assert f'threads {used} {count} {count}' in log.read_text()


def test_an_exception_is_exit_1_with_its_traceback_in_the_log(
        script, tmp_path):
    log = tmp_path / 'probe.log'
    assert run_script(script, ['fail'], str(log), 60) == 1
    assert 'ValueError: the probe failed here' in log.read_text()
    assert 'exit handler ran' in log.read_text()


def test_a_probe_out_of_time_is_killed(script, tmp_path):
    pid_file = tmp_path / 'pid'
    with pytest.raises(subprocess.TimeoutExpired):
        run_script(script, ['hang', str(pid_file)], str(tmp_path / 'log'),
                   10)
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_a_forked_probe_has_the_training_code_a_new_one_imports_it(
        script, tmp_path, start):
    log = tmp_path / 'probe.log'
    assert run_script(script, ['0'], str(log), 60) == 0
    assert line(log.read_text(), 'preloaded') == (
        f"preloaded {start == 'fork'}")
