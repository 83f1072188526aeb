"""Shared test set-up: deterministic torch, a tiny generated dataset."""
# mmseg_hosvd first: with mmcv-lite, mmseg imports only after its compat fixes
import mmseg_hosvd  # noqa: F401  # isort: skip
import pytest
import torch
from mmseg.utils import register_all_modules

from mmseg_hosvd.datasets import generate

from .helpers import TINY_SIZES

register_all_modules(init_default_scope=True)


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
