"""The suite's workers split the CPUs between them (tests/conftest.py)."""
import os

import torch

from .conftest import threads_per_worker


def test_a_worker_computes_on_its_share_and_so_do_its_children():
    threads = int(os.environ['OMP_NUM_THREADS'])
    assert torch.get_num_threads() == threads
    assert os.environ['MKL_NUM_THREADS'] == str(threads)
    workers = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
    assert threads * workers <= max(len(os.sched_getaffinity(0)), workers)


def test_the_share_is_the_cpus_over_the_workers(monkeypatch):
    cpus = len(os.sched_getaffinity(0))
    monkeypatch.delenv('PYTEST_XDIST_WORKER_COUNT', raising=False)
    assert threads_per_worker() == cpus
    monkeypatch.setenv('PYTEST_XDIST_WORKER_COUNT', str(cpus))
    assert threads_per_worker() == 1
    monkeypatch.setenv('PYTEST_XDIST_WORKER_COUNT', str(4 * cpus))
    assert threads_per_worker() == 1
