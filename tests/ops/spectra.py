"""Matrices and activations of known spectrum for the solver tests."""
import torch

from mmseg_hosvd.ops import gram_eigh, rank_from_energy, tucker_to_tensor


def matrix_with_spectrum(singular_values, cols, dtype=torch.float64, seed=0):
    """X = U diag(s) V^T with random orthonormal U, V."""
    gen = torch.Generator().manual_seed(seed)
    rows = len(singular_values)
    u = torch.linalg.qr(torch.randn(rows, rows, generator=gen,
                                    dtype=torch.float64)).Q
    v = torch.linalg.qr(torch.randn(cols, rows, generator=gen,
                                    dtype=torch.float64)).Q
    s = torch.as_tensor(singular_values, dtype=torch.float64)
    return (u * s @ v.t()).to(dtype)


def exact_rank(matrix, eps):
    """The paper's rank: from the full Gram eigendecomposition."""
    return rank_from_energy(gram_eigh(matrix)[0], eps)


def captured_fraction(vectors, matrix):
    """Fraction of the energy of ``matrix`` on the span of ``vectors``."""
    matrix = matrix.double()
    return float((vectors.double().t() @ matrix).square().sum() /
                 matrix.square().sum())


def low_rank_wide_activation(channels=320, rank=6, seed=0):
    """A (4, channels, 6, 5) Tucker-rank-6 tensor plus a little noise."""
    gen = torch.Generator().manual_seed(seed)
    shape = (4, channels, 6, 5)
    parts = [torch.randn(s, rank, generator=gen, dtype=torch.float64)
             for s in shape]
    core = torch.randn(rank, rank, rank, rank, generator=gen,
                       dtype=torch.float64)
    decay = torch.tensor([0.7**i for i in range(rank)], dtype=torch.float64)
    core = core * decay.view(1, -1, 1, 1)
    noise = 0.01 * torch.randn(shape, generator=gen, dtype=torch.float64)
    return tucker_to_tensor((core, parts)) + noise
