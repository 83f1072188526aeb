"""A tensor's mode-k unfolding as an operator, never copied whole.

The leading vectors of an unfolding X need only ``X X^T`` (its Gram matrix)
or products ``X X^T B``, and both are sums over column blocks of X. For a
contiguous tensor seen as ``(before, size, after)``, the mode-k unfolding's
columns are the ``before`` blocks ``tensor[b]`` of shape ``(size, after)``,
each a view; an unfolding is a full-size copy only when it is built as one
matrix. :class:`ModeUnfolding` sums over blocks instead: views where a block
is large, copies of a few small blocks at a time (at most
:data:`CHUNK_BYTES`) where blocks are small, so a decomposition's
temporaries stay a small fraction of its input. Blocks are cast to the
decomposition dtype one at a time, so a bfloat16 activation (under mixed
precision) is never copied whole into float32 either.

Blocks come in the column order of :func:`~.tensor_ops.unfold` (the
``before`` index, then the ``after`` one), gathered or not.
"""
import math
from typing import Iterator, Optional, Tuple, Union

import torch

from .spectrum import decomposition_dtype
from .tensor_ops import gram_times, thin_projection

#: Most bytes of small blocks gathered into one copied matrix...
CHUNK_BYTES = 4 * 2**20
#: ... and at most this fraction of the tensor, unless that is below
#: :data:`MIN_CHUNK_BYTES` (a tiny tensor is gathered whole).
CHUNK_FRACTION = 1 / 8
MIN_CHUNK_BYTES = 256 * 2**10
#: Columns per product when a Gram matrix sums over views: longer
#: products run slower on CPU, many small ones too.
GRAM_COLUMNS = 2**16


class ModeUnfolding:
    """The mode-``mode`` unfolding of ``tensor``, used through products.

    Args:
        tensor: Tensor of any order and floating dtype; a non-contiguous
            one is made contiguous first (one copy).
        mode: The mode whose index becomes the rows.
        dtype: The dtype the products are computed in; by default the
            decomposition dtype of ``tensor`` (float32, float64 for
            float64).
    """

    def __init__(self, tensor: torch.Tensor, mode: int,
                 dtype: Optional[torch.dtype] = None):
        if not -tensor.ndim <= mode < tensor.ndim:
            raise ValueError(f'mode {mode} is out of range for a tensor of '
                             f'order {tensor.ndim}')
        mode %= tensor.ndim
        tensor = tensor.detach().contiguous()
        shape = tensor.shape
        self.rows = shape[mode]
        self.before = math.prod(shape[:mode])
        self.after = math.prod(shape[mode + 1:])
        self.dtype = dtype or decomposition_dtype(tensor.dtype)
        self.device = tensor.device
        #: The tensor viewed as (before, rows, after).
        self.grid = tensor.reshape(self.before, self.rows, self.after)
        self._item = torch.empty((), dtype=self.dtype).element_size()
        self._chunk_bytes = min(
            CHUNK_BYTES,
            max(MIN_CHUNK_BYTES,
                int(tensor.numel() * self._item * CHUNK_FRACTION)))

    @property
    def shape(self) -> Tuple[int, int]:
        """(rows, columns) of the unfolding."""
        return self.rows, self.before * self.after

    def blocks(self) -> Iterator[torch.Tensor]:
        """Matrices whose columns, together, are the unfolding's columns.

        Yields:
            Matrices of shape ``(rows, n_i)`` in :attr:`dtype`: views of the
            tensor where no cast is needed and the blocks are large (or the
            unfolding is a transposed view), otherwise copies of at most
            one chunk (see :meth:`slices_per_chunk`) or one block,
            whichever is larger; a block that needs a cast is cast in
            column slices of at most one chunk.
        """
        cast = self.grid.dtype != self.dtype
        if self.after == 1:
            rows_first = self.grid[:, :, 0]
            step = self.slices_per_chunk(self.rows) if cast else self.before
            for part in rows_first.split(step):
                yield part.to(self.dtype).t()
            return
        # no local keeps a yielded copy: with the consumer's `del`, one chunk
        # is alive at a time, not two
        block = self.rows * self.after
        for chunk in self.grid.split(self.slices_per_chunk(block)):
            if chunk.shape[0] > 1:
                yield torch.empty(
                    self.rows, chunk.shape[0], self.after, dtype=self.dtype,
                    device=self.device).copy_(chunk.transpose(0, 1)).reshape(
                        self.rows, -1)
            elif not cast:
                yield chunk[0]
            else:
                columns = self.slices_per_chunk(self.rows)
                for part in chunk[0].split(columns, dim=1):
                    yield part.to(self.dtype)

    def slices_per_chunk(self, elements: int) -> int:
        """How many slices of ``elements`` elements, in :attr:`dtype`, fit
        in one chunk (at least one): :data:`CHUNK_BYTES`, or
        :data:`CHUNK_FRACTION` of a smaller tensor."""
        size = elements * self._item
        return max(1, self._chunk_bytes // max(size, 1))

    def slabs(self, like: torch.Tensor
              ) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        """Matching parts of ``like`` and of the tensor, for mode products.

        Args:
            like: A tensor of shape ``(before, k, after)``.

        Yields:
            ``(target, part)`` such that ``target`` (a view of ``like``)
            receives ``M @ part`` for a (k, rows) matrix M: ``part`` is the
            tensor seen as (before, rows, after) (a view when no cast is
            needed), or, to be cast, copies of at most one chunk: whole
            blocks, column slices of one block, or rows of a transposed
            view. The targets cover ``like`` once.
        """
        if self.after == 1:
            step = self.slices_per_chunk(self.rows)
            for start in range(0, self.before, step):
                yield (like[start:start + step, :, 0].t(),
                       self.grid[start:start + step, :, 0].t().to(self.dtype))
            return
        if self.grid.dtype == self.dtype:
            yield like, self.grid
            return
        count = self.slices_per_chunk(self.rows * self.after)
        if count > 1:
            for start in range(0, self.before, count):
                yield (like[start:start + count],
                       self.grid[start:start + count].to(self.dtype))
            return
        columns = self.slices_per_chunk(self.rows)
        for index in range(self.before):
            for start in range(0, self.after, columns):
                yield (like[index, :, start:start + columns],
                       self.grid[index, :, start:start + columns].to(
                           self.dtype))

    def gram(self) -> torch.Tensor:
        """``X X^T``, shape (rows, rows).

        A mode with fewer rows than each block has columns (the batch,
        height and width modes of an activation), in a tensor that needs
        no cast, is summed over views of the tensor, never gathered:
        batched products of blocks, or :data:`GRAM_COLUMNS`-column slices
        of a long one (``benchmarks/unfolding_products.py``: 0.63-0.87x of
        :meth:`gram_of_blocks`'s time on SegFormer-B0's fusion input,
        0.52-0.56x on the batch mode of a 128-channel 128 x 128 input,
        1.04-1.09x, a few hundredths of a millisecond, on the batch mode
        of the CNNs' 16 x 16 head inputs). Other modes, and a tensor to be
        cast (bfloat16 under mixed precision), sum over :meth:`blocks`.
        """
        if self.grid.dtype != self.dtype or self.rows >= self.after:
            return self.gram_of_blocks()
        gram = torch.zeros(self.rows, self.rows, dtype=self.dtype,
                           device=self.device)
        self._add_gram_of_views(gram)
        return gram

    def gram_of_blocks(self) -> torch.Tensor:
        """``X X^T`` summed over :meth:`blocks` (gathered where small):
        :meth:`gram`'s way for large modes and cast tensors, and the
        baseline ``benchmarks/unfolding_products.py`` times it against."""
        gram = torch.zeros(self.rows, self.rows, dtype=self.dtype,
                           device=self.device)
        for block in self.blocks():
            gram.addmm_(block, block.t())
            del block
        return gram

    def _add_gram_of_views(self, gram: torch.Tensor) -> None:
        if self.after >= GRAM_COLUMNS:
            for matrix in self.grid:
                for part in matrix.split(GRAM_COLUMNS, dim=1):
                    gram.addmm_(part, part.t())
            return
        # (count, rows, rows) products at most one chunk in size
        count = max(1, min(GRAM_COLUMNS // self.after,
                           self.slices_per_chunk(self.rows * self.rows)))
        for chunk in self.grid.split(count):
            gram.add_(torch.bmm(chunk, chunk.transpose(1, 2)).sum(0))

    def gram_times(self, block: torch.Tensor) -> torch.Tensor:
        """``X X^T B`` without forming ``X X^T``.

        Args:
            block: B, shape (rows, k), in :attr:`dtype`.

        Returns:
            X X^T B, shape (rows, k).
        """
        out = torch.zeros_like(block)
        for part in self.blocks():
            out.add_(gram_times(part, block))
            del part
        return out

    def projected_gram(self, block: torch.Tensor,
                       projection: Optional[torch.Tensor] = None
                       ) -> torch.Tensor:
        """``B^T X X^T B``: the Gram matrix projected on a thin block.

        One product with X per column block, ``Z = B^T X_j``, then the
        small ``Z Z^T``: half the work of ``B^T (X X^T B)``.

        Args:
            block: B, shape (rows, k), in :attr:`dtype`.
            projection: Where to keep ``Z = B^T X`` too, or None: a tensor
                of shape (k, columns) in :attr:`dtype`, its columns in the
                unfolding's order (the ``before`` index, then the ``after``
                one, as :func:`~.tensor_ops.unfold`'s).

        Returns:
            B^T X X^T B, shape (k, k), symmetric.

        Raises:
            ValueError: For a ``projection`` of another shape.
        """
        if projection is not None and projection.shape != (block.shape[1],
                                                            self.shape[1]):
            raise ValueError(f'the projection must have shape '
                             f'{(block.shape[1], self.shape[1])}, got '
                             f'{tuple(projection.shape)}')
        out = block.new_zeros(block.shape[1], block.shape[1])
        column = 0
        for part in self.blocks():
            projected = thin_projection(block, part)
            out.addmm_(projected, projected.t())
            if projection is not None:
                width = projected.shape[1]
                projection[:, column:column + width] = projected
                column += width
            del part, projected
        return out

    def energy(self) -> float:
        """``||X||_F^2``, accumulated in float64 block by block (inf or nan
        when the tensor holds them or overflows)."""
        return math.fsum(
            float(torch.linalg.vector_norm(part))**2
            for part in self.blocks())


def as_unfolding(matrix: Union[torch.Tensor, ModeUnfolding]) -> ModeUnfolding:
    """``matrix`` as a :class:`ModeUnfolding` (a matrix is its own mode-0
    unfolding); an unfolding is returned as it is.

    Raises:
        ValueError: For a tensor that is not a matrix.
    """
    if isinstance(matrix, ModeUnfolding):
        return matrix
    if matrix.ndim != 2:
        raise ValueError('expected a matrix or a ModeUnfolding, got a tensor '
                         f'of shape {tuple(matrix.shape)}')
    if not matrix.is_contiguous() and matrix.t().is_contiguous():
        return ModeUnfolding(matrix.t(), 1)
    return ModeUnfolding(matrix, 0)
