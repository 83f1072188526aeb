"""Tensor algebra in TensorLy's vocabulary: unfoldings and mode products."""
import math
from typing import Optional, Sequence

import torch


def gram_times(matrix: torch.Tensor, block: torch.Tensor) -> torch.Tensor:
    """``matrix @ matrix.T @ block`` without forming the Gram matrix.

    Evaluated as ``((block.T @ matrix) @ matrix.T).T``: with a thin block and
    a strided unfolding, ``matrix.T @ block`` takes a much slower BLAS path
    on CPU.

    Args:
        matrix: X, shape (m, n).
        block: B, shape (m, k).

    Returns:
        X X^T B, shape (m, k).
    """
    return ((block.t() @ matrix) @ matrix.t()).t()


def unfold(tensor: torch.Tensor, mode: int) -> torch.Tensor:
    """Mode-``mode`` unfolding: ``mode`` first, the other modes flattened.

    Args:
        tensor: Tensor of any order.
        mode: The mode that becomes the rows.

    Returns:
        Matrix of shape ``(tensor.shape[mode], -1)``.
    """
    return torch.movedim(tensor, mode, 0).reshape(tensor.shape[mode], -1)


def fold(unfolded: torch.Tensor, mode: int,
         shape: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`unfold`.

    Args:
        unfolded: Matrix of shape ``(shape[mode], -1)``.
        mode: The mode that the rows of ``unfolded`` index.
        shape: Shape of the folded tensor.

    Returns:
        Tensor of shape ``shape``.
    """
    shape = list(shape)
    moved = [shape[mode]] + shape[:mode] + shape[mode + 1:]
    return torch.movedim(unfolded.reshape(moved), 0, mode)


def mode_dot(tensor: torch.Tensor, matrix: torch.Tensor,
             mode: int) -> torch.Tensor:
    """Mode product: multiplies mode ``mode`` of ``tensor`` by ``matrix``.

    Args:
        tensor: Tensor whose ``mode`` has size ``matrix.shape[1]``.
        matrix: Matrix of shape ``(new_size, tensor.shape[mode])``.
        mode: The mode to multiply.

    Returns:
        Tensor equal to ``tensor`` with mode ``mode`` of size ``new_size``.
    """
    shape = list(tensor.shape)
    before, size = math.prod(shape[:mode]), shape[mode]
    after = math.prod(shape[mode + 1:])
    if after == 1:
        product = tensor.reshape(before, size) @ matrix.t()
    else:
        # (before, size, after) is a view of a contiguous tensor, where
        # tensordot would first copy it with ``mode`` moved to the front
        product = torch.matmul(matrix, tensor.reshape(before, size, after))
    shape[mode] = matrix.shape[0]
    return product.reshape(shape)


def multi_mode_dot(tensor: torch.Tensor,
                   matrices: Sequence[torch.Tensor],
                   modes: Optional[Sequence[int]] = None,
                   transpose: bool = False) -> torch.Tensor:
    """Chain of mode products, one matrix per mode.

    The products commute, so they are applied in the order that shrinks the
    tensor fastest, which is what keeps compressing large activations cheap.

    Args:
        tensor: Tensor to multiply.
        matrices: One matrix per entry of ``modes``.
        modes: Modes to multiply; all modes in order by default.
        transpose: Multiply by the transposes of ``matrices`` (projection
            onto factor matrices of shape ``(size, rank)``).

    Returns:
        The product tensor.
    """
    modes = list(range(len(matrices))) if modes is None else list(modes)
    if len(modes) != len(matrices):
        raise ValueError(f'got {len(matrices)} matrices for modes {modes}')
    mats = [m.t() if transpose else m for m in matrices]

    def growth(pair):
        matrix, mode = pair
        return matrix.shape[0] / max(tensor.shape[mode], 1)

    for matrix, mode in sorted(zip(mats, modes), key=growth):
        tensor = mode_dot(tensor, matrix, mode)
    return tensor


def tucker_to_tensor(core: torch.Tensor,
                     factors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Full tensor of a Tucker decomposition ``(core, factors)``.

    Args:
        core: Core tensor of shape ``(K0, ..., Kn)``.
        factors: Factor matrices of shapes ``(I_j, K_j)``.

    Returns:
        Tensor of shape ``(I0, ..., In)``.
    """
    return multi_mode_dot(core, factors)
