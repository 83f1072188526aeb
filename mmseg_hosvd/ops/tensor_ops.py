"""Tensor algebra in TensorLy's vocabulary, with TensorLy's signatures.

``unfold``, ``fold``, ``mode_dot``, ``multi_mode_dot`` and
``tucker_to_tensor`` take the arguments TensorLy documents for its functions
of these names and return the same tensors, for torch tensors; the products
are computed in the order that is cheapest on large activations.
"""
import math
import operator
from typing import Optional, Sequence

import torch

from .dense_layout import contiguous_order


def _column_major(matrix: torch.Tensor) -> bool:
    """Whether ``matrix`` is the transpose of a row-major matrix (the
    channel unfolding of a channels-last activation)."""
    return matrix.t().is_contiguous() and not matrix.is_contiguous()


def thin_projection(block: torch.Tensor,
                    matrix: torch.Tensor) -> torch.Tensor:
    """``block.T @ matrix`` for a thin block, in the faster order.

    A column-major ``matrix`` is multiplied from its row-major transpose,
    ``(matrix.T @ block).T`` (0.79-0.80x of the time of ``block.T @
    matrix`` for a block of 52 and SegFormer-B0's 1024 x 8192 channel
    unfolding, ``benchmarks/unfolding_products.py``); any other
    ``matrix`` directly.

    Args:
        block: B, shape (m, k).
        matrix: X, shape (m, n).

    Returns:
        B^T X, shape (k, n) (a transposed view for a column-major X).
    """
    if _column_major(matrix):
        return (matrix.t() @ block).t()
    return block.t() @ matrix


def gram_times(matrix: torch.Tensor, block: torch.Tensor) -> torch.Tensor:
    """``matrix @ matrix.T @ block`` without forming the Gram matrix.

    Evaluated as ``(Z @ matrix.T).T`` with ``Z =`` :func:`thin_projection`
    of ``matrix``: with a thin block and a strided unfolding,
    ``matrix.T @ block`` takes a much slower BLAS path on CPU, while a
    column-major unfolding is fastest read through its row-major transpose.

    Args:
        matrix: X, shape (m, n).
        block: B, shape (m, k).

    Returns:
        X X^T B, shape (m, k).
    """
    return (thin_projection(block, matrix) @ matrix.t()).t()


def _mode_index(mode, ndim: int) -> int:
    """``mode`` in ``range(ndim)``; a negative mode counts from the end."""
    try:
        index = operator.index(mode)
    except TypeError:
        index = None
    if index is None or isinstance(mode, bool) or not -ndim <= index < ndim:
        raise ValueError(f'mode must be an int in [{-ndim}, {ndim - 1}] for '
                         f'a tensor of order {ndim}, got {mode!r}')
    return index % ndim


def unfold(tensor: torch.Tensor, mode: int) -> torch.Tensor:
    """Mode-``mode`` unfolding: ``mode`` first, the other modes flattened.

    Args:
        tensor: Tensor of any order.
        mode: The mode that becomes the rows.

    Returns:
        Matrix of shape ``(tensor.shape[mode], -1)``.
    """
    mode = _mode_index(mode, tensor.ndim)
    return torch.movedim(tensor, mode, 0).reshape(tensor.shape[mode], -1)


def fold(unfolded_tensor: torch.Tensor, mode: int,
         shape: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`unfold`.

    Args:
        unfolded_tensor: The mode-``mode`` unfolding of a tensor of shape
            ``shape`` (any tensor with as many elements, taken in that
            order).
        mode: The mode that the rows of ``unfolded_tensor`` index.
        shape: Shape of the folded tensor.

    Returns:
        Tensor of shape ``shape``.
    """
    shape = list(shape)
    mode = _mode_index(mode, len(shape))
    if unfolded_tensor.numel() != math.prod(shape):
        raise ValueError(
            f'fold: an unfolding of shape {tuple(unfolded_tensor.shape)} has '
            f'{unfolded_tensor.numel()} elements, a tensor of shape '
            f'{tuple(shape)} has {math.prod(shape)}')
    moved = [shape[mode]] + shape[:mode] + shape[mode + 1:]
    return torch.movedim(unfolded_tensor.reshape(moved), 0, mode)


def mode_dot(tensor: torch.Tensor, matrix_or_vector: torch.Tensor,
             mode: int, transpose: bool = False) -> torch.Tensor:
    """Mode product of ``tensor`` with a matrix or a vector.

    Args:
        tensor: Tensor of shape ``(I_0, ..., I_mode, ..., I_N)``.
        matrix_or_vector: Matrix of shape ``(J, I_mode)`` (``(I_mode, J)``
            with ``transpose``), or vector of shape ``(I_mode,)``.
        mode: The mode to multiply.
        transpose: Multiply by the (conjugate) transpose of the matrix;
            a vector is used as it is.

    Returns:
        ``tensor`` with mode ``mode`` of size ``J`` for a matrix; without
        mode ``mode`` for a vector. The product of a permuted tensor (such
        as a channels-last one) by a matrix is a permuted view in the same
        memory order.

    Raises:
        ValueError: For an operand that is neither a matrix nor a vector,
            or whose size does not match mode ``mode``.
    """
    mode = _mode_index(mode, tensor.ndim)
    operand = matrix_or_vector
    if operand.ndim == 2 and transpose:
        operand = operand.mH
    if operand.ndim not in (1, 2):
        raise ValueError(f'mode_dot multiplies by a matrix or a vector, got '
                         f'an operand of shape {tuple(operand.shape)}')
    shape = list(tensor.shape)
    before, size = math.prod(shape[:mode]), shape[mode]
    after = math.prod(shape[mode + 1:])
    if operand.shape[-1] != size:
        raise ValueError(
            f'mode_dot: mode {mode} of the tensor of shape {tuple(shape)} '
            f'has size {size}, the operand of shape '
            f'{tuple(matrix_or_vector.shape)} (transpose={transpose}) '
            f'multiplies size {operand.shape[-1]}')
    order = None if tensor.is_contiguous() else contiguous_order(tensor)
    if operand.ndim == 2 and order is not None:
        # a permuted tensor (a channels-last activation or gradient) is
        # multiplied where it lies, where reshaping it would copy it whole
        product = mode_dot(tensor.permute(order), operand, order.index(mode))
        return product.permute([order.index(m) for m in range(len(order))])
    if after == 1:
        product = tensor.reshape(before, size) @ (
            operand.t() if operand.ndim == 2 else operand)
    else:
        # (before, size, after) is a view of a contiguous tensor, where
        # tensordot would first copy it with ``mode`` moved to the front
        product = torch.matmul(operand, tensor.reshape(before, size, after))
    if operand.ndim == 1:
        del shape[mode]
    else:
        shape[mode] = operand.shape[0]
    return product.reshape(shape)


def multi_mode_dot(tensor: torch.Tensor,
                   matrix_or_vec_list: Sequence[torch.Tensor],
                   modes: Optional[Sequence[int]] = None,
                   skip: Optional[int] = None,
                   transpose: bool = False) -> torch.Tensor:
    """Mode products with several matrices or vectors, as TensorLy's.

    The entries are ordered by mode (keeping the list order within a mode);
    ``modes`` always index the modes of ``tensor``, also after a vector has
    removed a lower mode. Products on distinct modes commute and are applied
    in the order that shrinks the tensor fastest, which is what keeps
    compressing large activations cheap; several entries on one mode are
    applied in their order.

    Args:
        tensor: Tensor to multiply.
        matrix_or_vec_list: One matrix or vector per entry of ``modes``.
        modes: Their modes; ``0, 1, ...`` by default.
        skip: Position of one entry to leave out, counted in the order by
            mode (the list's position when ``modes`` ascend, as by default).
        transpose: Multiply by the (conjugate) transposes of the matrices
            (projection onto factor matrices of shape ``(size, rank)``);
            vectors are conjugated.

    Returns:
        The product tensor.

    Raises:
        ValueError: For a number of modes other than of entries, a mode or
            a ``skip`` out of range, or an operand :func:`mode_dot` refuses.
    """
    operands = list(matrix_or_vec_list)
    modes = list(range(len(operands))) if modes is None else list(modes)
    if len(modes) != len(operands):
        raise ValueError(f'got {len(operands)} matrices or vectors for modes '
                         f'{modes}')
    modes = [_mode_index(mode, tensor.ndim) for mode in modes]
    pairs = sorted(zip(operands, modes, strict=True), key=lambda pair: pair[1])
    if skip is not None:
        if isinstance(skip, bool) or not isinstance(
                skip, int) or not 0 <= skip < len(pairs):
            raise ValueError(f'skip must be None or an int in [0, '
                             f'{len(pairs) - 1}], got {skip!r}')
        del pairs[skip]
    if transpose:
        pairs = [(m.mH if m.ndim == 2 else m.conj(), mode)
                 for m, mode in pairs]

    def growth(pair):
        operand, mode = pair
        rows = operand.shape[0] if operand.ndim == 2 else 1
        return rows / max(tensor.shape[mode], 1)

    if len({mode for _, mode in pairs}) == len(pairs):
        pairs.sort(key=growth)
    removed = []
    for operand, mode in pairs:
        # a vector removed its mode: later modes move down by one
        current = mode - sum(gone <= mode for gone in removed)
        tensor = mode_dot(tensor, operand, current)
        if operand.ndim == 1:
            removed.append(mode)
    return tensor


def tucker_to_tensor(tucker_tensor,
                     skip_factor: Optional[int] = None,
                     transpose_factors: bool = False,
                     modes: Optional[Sequence[int]] = None) -> torch.Tensor:
    """Full tensor of a Tucker decomposition, as TensorLy's.

    Args:
        tucker_tensor: The pair ``(core, factors)`` (or a TensorLy
            ``TuckerTensor``): a core of shape ``(K_0, ..., K_N)`` and factor
            matrices of shapes ``(I_j, K_j)``.
        skip_factor: Position of one factor to leave out (see
            :func:`multi_mode_dot`'s ``skip``).
        transpose_factors: Multiply by the factors' transposes.
        modes: The core's modes the factors multiply; all in order by
            default.

    Returns:
        Tensor of shape ``(I_0, ..., I_N)``.

    Raises:
        ValueError: For a ``tucker_tensor`` that is not a (core, factors)
            pair, e.g. the core and the factors passed separately.
    """
    if isinstance(skip_factor, (list, tuple)) or isinstance(
            tucker_tensor, torch.Tensor):
        raise ValueError(
            'tucker_to_tensor takes the Tucker tensor as one (core, factors) '
            f'pair, got a {type(tucker_tensor).__name__} with skip_factor '
            f'a {type(skip_factor).__name__}: call '
            'tucker_to_tensor((core, factors))')
    try:
        core, factors = tucker_tensor
    except (TypeError, ValueError):
        raise ValueError('tucker_to_tensor takes a (core, factors) pair, got '
                         f'a {type(tucker_tensor).__name__}') from None
    return multi_mode_dot(core, factors, modes=modes, skip=skip_factor,
                          transpose=transpose_factors)
