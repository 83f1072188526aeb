"""The method session's calibration: declared on the base, which does
nothing; the subspace session measures ranks (tests/benchmarks/
test_benchmark_contracts.py runs it on a model)."""
import pytest
import torch

from mmseg_hosvd.methods import MethodSession
from mmseg_hosvd.methods.subspace_rank_session import SubspaceRankSession


class Untouchable(torch.nn.Module):
    def forward(self, *args):
        raise AssertionError('the base calibration ran the model')


@pytest.mark.parametrize('logger', [None, 'a logger'])
def test_the_base_calibration_does_nothing(logger):
    assert MethodSession().calibrate(Untouchable(), torch.zeros(1),
                                     logger) is True


def test_sessions_calibrate_through_the_base():
    """Every session is a MethodSession, so callers need no type check."""
    assert issubclass(SubspaceRankSession, MethodSession)
    assert SubspaceRankSession.calibrate is not MethodSession.calibrate
    # the earlier name still works
    assert SubspaceRankSession.measure is SubspaceRankSession.calibrate
