"""Spectra of Gram matrices and ranks by explained variance.

The left singular vectors of a matrix X are the eigenvectors of its Gram
matrix X X^T, and the eigenvalues are the squared singular values (the
energies): taking them from the Gram matrix of the short side avoids a full
SVD of a wide unfolding.
"""
from typing import Tuple

import torch

from .checks import check_eps, check_finite


def decomposition_dtype(dtype: torch.dtype) -> torch.dtype:
    """Dtype the decompositions run in: float64 stays, all else is float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def rank_from_energy(energy: torch.Tensor, eps: float) -> int:
    """Smallest k whose leading energies reach ``eps`` of the total.

    Args:
        energy: Squared singular values (eigenvalues of the Gram matrix) in
            descending order.
        eps: Explained-variance threshold in (0, 1]; 1 keeps every component.

    Returns:
        The rank; 0 when the total energy is zero.
    """
    eps = check_eps(eps)
    energy = energy.detach().to(torch.float64).clamp_min(0)
    total = energy.sum()
    if total <= 0:
        return 0
    if eps >= 1.0:
        return energy.numel()
    ratio = torch.cumsum(energy, 0) / total
    return min(int((ratio < eps).sum()) + 1, energy.numel())


def rank_from_explained_variance(singular_values: torch.Tensor,
                                 eps: float) -> int:
    """Smallest k with ``sum(s[:k]**2) / sum(s**2) >= eps``.

    Args:
        singular_values: Singular values in descending order.
        eps: Explained-variance threshold in (0, 1].

    Returns:
        The rank; 0 for an all-zero matrix.
    """
    return rank_from_energy(singular_values.to(torch.float64)**2, eps)


def gram_eigh(matrix: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Eigenpairs of ``matrix @ matrix.T`` in descending order.

    Args:
        matrix: Matrix of shape (m, n), usually with m much smaller than n.

    Returns:
        ``(energy, vectors)``: the m squared singular values of ``matrix``
        (clamped at 0) and its left singular vectors as columns, both in the
        decomposition dtype.

    Raises:
        ValueError: If ``matrix`` holds NaN or Inf.
    """
    work = matrix.to(decomposition_dtype(matrix.dtype))
    return gram_eigenpairs(work @ work.t())


def gram_eigenpairs(gram: torch.Tensor
                    ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Eigenpairs of a Gram matrix ``X X^T`` in descending order.

    Args:
        gram: The Gram matrix, float32 or float64.

    Returns:
        ``(energy, vectors)``: the squared singular values of X (clamped at
        0) and its left singular vectors as columns.

    Raises:
        ValueError: If ``gram`` holds NaN or Inf (so X does).
    """
    check_finite(gram.diagonal())
    energy, vectors = symmetric_eigh(gram)
    return energy.flip(0).clamp_min(0), vectors.flip(1)


def symmetric_eigh(gram: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """``torch.linalg.eigh`` that retries in float64 where float32 fails.

    LAPACK's float32 solver can fail to converge on Gram matrices with many
    zero or repeated eigenvalues (seen on the 1024-channel input of PSPNet's
    bottleneck at 512 x 512 with random weights); float64 converges there.
    It can also fail silently: on one such matrix, with one thread, it
    returned NaN in two eigenvectors without an error, which made the
    weight gradient NaN and, through the grad-norm clip, every trained
    parameter. A non-finite result counts as a failure.

    Args:
        gram: A symmetric matrix, float32 or float64.

    Returns:
        ``(eigenvalues ascending, eigenvectors as columns)`` in the dtype
        of ``gram``.

    Raises:
        ValueError: If float64 does not converge either.
    """
    try:
        return _finite_eigh(gram)
    except torch.linalg.LinAlgError as error:
        if gram.dtype != torch.float64:
            try:
                energy, vectors = _finite_eigh(gram.double())
                return energy.to(gram.dtype), vectors.to(gram.dtype)
            except torch.linalg.LinAlgError:
                pass
        raise ValueError(
            f'the eigendecomposition of a {gram.shape[0]} x {gram.shape[1]} '
            f'Gram matrix did not converge in {gram.dtype} nor float64 '
            f'({error}); use a threshold eps < 1 with solver=\'auto\' or '
            'check the activations') from None


def compact(tensor: torch.Tensor) -> torch.Tensor:
    """A contiguous copy that owns exactly its own storage.

    Slices of eigenvector matrices would otherwise keep the whole matrix
    alive in what autograd saves.
    """
    if tensor.untyped_storage().nbytes() == tensor.numel(
    ) * tensor.element_size() and tensor.is_contiguous():
        return tensor
    return tensor.clone(memory_format=torch.contiguous_format)


def _finite_eigh(gram: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """``torch.linalg.eigh``, raising its error for a non-finite result."""
    energy, vectors = torch.linalg.eigh(gram)
    if not (bool(torch.isfinite(energy).all())
            and bool(torch.isfinite(vectors).all())):
        raise torch.linalg.LinAlgError(
            'the eigensolver returned NaN or Inf for a finite matrix')
    return energy, vectors
