"""Where LAPACK's float32 eigensolver fails to converge, float64 takes over.

The real failures (1024 x 1024 Grams of PSPNet's bottleneck input at
512 x 512 with random weights: one raising, one returning NaN with one
thread) depend on the LAPACK build, the thread count and a 4 MB matrix,
so they are simulated here; the fallback's result is checked
against float64 itself.
"""
import pytest
import torch
from torch.testing import assert_close

from mmseg_hosvd.ops import hosvd, spectrum


def failing_in(dtypes, monkeypatch, silently=False):
    """Makes eigh fail in ``dtypes``: raising LAPACK's error, or (as
    float32 LAPACK did with one thread on PSPNet's bottleneck Gram at
    512 x 512) returning NaN in two eigenvectors without one."""
    real = torch.linalg.eigh
    calls = []

    def eigh(matrix):
        calls.append(matrix.dtype)
        if matrix.dtype in dtypes and not silently:
            raise torch.linalg.LinAlgError('failed to converge (simulated)')
        energy, vectors = real(matrix)
        if matrix.dtype in dtypes:
            vectors = vectors.clone()
            vectors[:, -2:] = float('nan')
        return energy, vectors

    monkeypatch.setattr(spectrum.torch.linalg, 'eigh', eigh)
    return calls


@pytest.mark.parametrize('silently', [False, True])
def test_float32_failure_is_retried_in_float64(silently, monkeypatch):
    x = torch.randn(6, 40)
    gram = x @ x.t()
    want = torch.linalg.eigh(gram.double())
    calls = failing_in({torch.float32}, monkeypatch, silently)
    energy, vectors = spectrum.symmetric_eigh(gram)
    assert calls == [torch.float32, torch.float64]
    assert energy.dtype == vectors.dtype == torch.float32
    assert_close(energy, want[0].float())
    assert_close(vectors.abs(), want[1].float().abs())


@pytest.mark.parametrize('silently', [False, True])
def test_hosvd_trains_through_it(silently, monkeypatch):
    x = torch.randn(2, 5, 6, 7)
    want_core, _ = hosvd(x, eps=1.0)
    failing_in({torch.float32}, monkeypatch, silently)
    core, factors = hosvd(x, eps=1.0)
    assert all(bool(torch.isfinite(f).all()) for f in factors)
    assert_close(core.abs(), want_core.abs(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('silently', [False, True])
def test_when_float64_fails_too_the_error_says_so(silently, monkeypatch):
    failing_in({torch.float32, torch.float64}, monkeypatch, silently)
    with pytest.raises(ValueError, match=r'eigendecomposition of a 4 x 4 '
                       r'Gram matrix did not converge in torch.float32 nor '
                       r'float64'):
        spectrum.symmetric_eigh(torch.eye(4))
