"""How probes start: forked from the server, or as new interpreters where
CUDA is available or the variable says so; a bad value is named."""
import pytest
import torch

from mmseg_hosvd.planning.probe_process import (
    START_VARIABLE,
    forks_probes,
    run_script,
    start_server,
)


def test_without_the_variable_probes_fork_unless_cuda_is_there(
        monkeypatch):
    monkeypatch.delenv(START_VARIABLE, raising=False)
    assert forks_probes() == (not torch.cuda.is_available())


@pytest.mark.parametrize('value,forks', [('fork', True), ('new', False)])
def test_the_variable_chooses(monkeypatch, value, forks):
    monkeypatch.setenv(START_VARIABLE, value)
    assert forks_probes() == forks


@pytest.mark.parametrize('call', [
    lambda tmp: run_script('unused.py', [], str(tmp / 'log'), 1),
    lambda tmp: start_server()])
def test_a_bad_start_is_named(monkeypatch, tmp_path, call):
    monkeypatch.setenv(START_VARIABLE, 'spawn')
    with pytest.raises(ValueError, match="MMSEG_HOSVD_PROBE_START must be "
                       "'fork' or 'new', got 'spawn'"):
        call(tmp_path)
