"""How many CPU threads each probe gets when several run at once, and
which probes start first."""
import pytest

from mmseg_hosvd.planning.probe_runs import (
    probe_order,
    probe_threads,
    run_probe,
)
from mmseg_hosvd.planning.setups import SETUPS, get_setup

from ..helpers import model_config

#: A stand-in for tools/train.py that reports the threads it was given and
#: fails, so that run_probe shows the end of its log.
REPORTER = ('import os, sys\n'
            "print('threads', os.environ.get('OMP_NUM_THREADS'), "
            "os.environ.get('MKL_NUM_THREADS'))\n"
            'sys.exit(3)\n')


@pytest.mark.parametrize('jobs,cpus,threads', [
    (1, 16, None), (2, 2, 1), (2, 16, 8), (3, 16, 5), (4, 2, 1)])
def test_the_cpus_are_shared_evenly(jobs, cpus, threads):
    assert probe_threads(jobs, cpus) == threads


def test_the_allocating_probes_start_first_the_others_keep_their_order():
    order = [s.name for s in probe_order(SETUPS)]
    assert order[0] == 'hosvd-eps-alloc0.8'
    assert order[1:] == [s.name for s in SETUPS
                         if s.name != 'hosvd-eps-alloc0.8']
    named = [get_setup(n) for n in ('vanilla', 'qact2', 'hosvd-eps-alloc0.8',
                                    'hosvd-eps0.8')]
    assert [s.name for s in probe_order(named)] == [
        'hosvd-eps-alloc0.8', 'vanilla', 'qact2', 'hosvd-eps0.8']


def test_bad_jobs_are_named():
    with pytest.raises(ValueError, match='jobs must be >= 1, got 0'):
        probe_threads(0, 4)


@pytest.mark.parametrize('threads,shown', [(3, 'threads 3 3'),
                                           (None, 'threads 7 7')])
def test_a_probe_process_runs_on_its_share(tmp_path, monkeypatch, threads,
                                           shown):
    monkeypatch.setenv('OMP_NUM_THREADS', '7')
    monkeypatch.setenv('MKL_NUM_THREADS', '7')
    script = tmp_path / 'reporter.py'
    script.write_text(REPORTER)
    with pytest.raises(RuntimeError, match='exit 3') as failed:
        run_probe(str(script), model_config('deeplabv3').filename,
                  get_setup('vanilla'), str(tmp_path / 'probe'), 3, None,
                  60, threads)
    assert shown in str(failed.value)
