"""Fixtures of the ops tests."""
import pytest


@pytest.fixture
def ritz_calls(monkeypatch):
    """Records the shape of every matrix the Ritz solver of the table gets."""
    import mmseg_hosvd.ops.solvers as solvers
    calls = []
    real = solvers.ritz_leading_block

    def counting(matrix, eps, seed=0, start=None, **options):
        calls.append(tuple(matrix.shape))
        return real(matrix, eps, seed, start, **options)

    monkeypatch.setattr(solvers, 'ritz_leading_block', counting)
    return calls
