"""Shared test set-up: CPU threads per test process, deterministic torch,
a tiny generated dataset."""
import gc
import os

# mmseg_hosvd first: with mmcv-lite, mmseg imports only after its compat fixes
import mmseg_hosvd  # noqa: F401  # isort: skip
import pytest
import torch
from mmseg.utils import register_all_modules

from mmseg_hosvd.datasets import generate

from .helpers import TINY_SIZES

register_all_modules(init_default_scope=True)


def threads_per_worker() -> int:
    """This process's share of the CPUs: the suite runs one pytest-xdist
    worker per share (``-n N``), and a worker's torch threads and the
    processes its tests start (``tools/train.py``, the benchmarks) should
    not compete with the other workers' for the same cores."""
    workers = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
    return max(1, len(os.sched_getaffinity(0)) // workers)


def pytest_configure(config):
    """Each worker computes on its share of the CPUs, it and its child
    processes: with two workers of two threads each on two cores, their
    thread pools wait on each other. A thread count set in the
    environment is kept. The controller of ``-n N`` runs no tests, and its
    workers inherit its environment: it sets nothing."""
    if getattr(config.option, 'numprocesses', None):
        return
    threads = int(os.environ.setdefault('OMP_NUM_THREADS',
                                        str(threads_per_worker())))
    os.environ.setdefault('MKL_NUM_THREADS', str(threads))
    torch.set_num_threads(threads)


def pytest_collection_finish(session):
    """Moves what the imports and the collection made out of the garbage
    collector's sight: MMEngine runs a full collection each time it builds
    a dataset, which in a worker holding torch, mmseg and every test module
    took 0.42 s per dataset (15% of a module of short Runner tests under
    cProfile). Objects the tests make are collected as before."""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def one_thread():
    """One torch thread for the test: on tiny tensors thread hand-offs
    cost more than they save (``pytestmark =
    pytest.mark.usefixtures('one_thread')``)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory):
    """A generated two-domain dataset of a few 64 x 64 images."""
    root = tmp_path_factory.mktemp('shapes')
    generate(str(root), TINY_SIZES, image_size=64, seed=1)
    return str(root)
