"""Shared test set-up: deterministic torch, and the package imported once."""
import pytest
import torch

import mmseg_hosvd  # noqa: F401  (applies the compat fixes, registers modules)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
