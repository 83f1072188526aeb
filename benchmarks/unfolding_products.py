"""HOSVD's products with an unfolding, each against its plain way.

Two ways HOSVD reads an activation, timed in the same run against the way
they replaced:

* ``gram``: the Gram matrix of a mode with fewer rows than its blocks have
  columns (batch, height, width), summed over views of the tensor
  (:meth:`~mmseg_hosvd.ops.ModeUnfolding.gram`) against summed over
  gathered blocks (:meth:`~mmseg_hosvd.ops.ModeUnfolding.gram_of_blocks`).
* ``thin``: ``B^T X`` for the Ritz solver's thin block B and the channel
  unfolding X of a channels-last activation (a column-major matrix), read
  through X's row-major transpose (``thin_projection``) against ``B.T @
  X``.

Usage::

    python benchmarks/unfolding_products.py [--repeats 15] [--block 52]
        [--shapes 8x1024x32x32:cl 8x512x16x16 ...] [--json PATH]

A shape is ``BxCxHxW``, with ``:cl`` for a channels-last tensor. The
default shapes are SegFormer-B0's fusion input (channels-last, 128 x 128
images) and the decode-head inputs of the CNNs at 128 x 128 and 512 x 512.
The values are random: the time of these products does not depend on them.
"""
import argparse
import statistics
import time

import torch
from json_records import write_json

from mmseg_hosvd.ops import ModeUnfolding
from mmseg_hosvd.ops.dense_layout import dense_layout
from mmseg_hosvd.ops.tensor_ops import thin_projection

SHAPES = ['8x1024x32x32:cl', '8x512x16x16', '8x1024x16x16', '8x256x64x64',
          '8x128x128x128']


def activation(text):
    """``BxCxHxW[:cl]`` as a random tensor in that memory format."""
    dims, _, layout = text.partition(':')
    try:
        shape = tuple(int(part) for part in dims.split('x'))
    except ValueError:
        shape = ()
    if len(shape) != 4 or min(shape) < 1 or layout not in ('', 'cl'):
        raise argparse.ArgumentTypeError(
            f'expected BxCxHxW or BxCxHxW:cl, got {text!r}')
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    if layout == 'cl':
        x = x.contiguous(memory_format=torch.channels_last)
    return text, x


def seconds(fn):
    """Seconds of one call of ``fn``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved_ms(new, old, repeats):
    """Median milliseconds of ``new`` and ``old``, timed call by call in
    turn after one untimed call each (the machine's drift reaches both),
    and the median of the per-pair ratios."""
    new(), old()
    pairs = [(seconds(new), seconds(old)) for _ in range(repeats)]
    return (statistics.median(n for n, _ in pairs) * 1000,
            statistics.median(o for _, o in pairs) * 1000,
            statistics.median(n / o for n, o in pairs))


def records_of(label, x, block_width, repeats):
    """The records of one activation: its view-summed Gram modes, and the
    thin product of its channel mode where that unfolding is
    column-major."""
    dense, order = dense_layout(x)
    records = []
    for mode in range(x.ndim):
        unfolding = ModeUnfolding(dense, order.index(mode))
        if unfolding.rows < unfolding.after:
            new, old, ratio = interleaved_ms(unfolding.gram,
                                             unfolding.gram_of_blocks,
                                             repeats)
            records.append(dict(activation=label, product='gram', mode=mode,
                                new_ms=new, old_ms=old, ratio=ratio))
    channels = ModeUnfolding(dense, order.index(1))
    if channels.after == 1:  # the unfolding is a transposed view
        matrix = channels.grid[:, :, 0].t()
        block = torch.randn(matrix.shape[0], block_width)
        new, old, ratio = interleaved_ms(
            lambda: thin_projection(block, matrix),
            lambda: block.t() @ matrix, repeats)
        records.append(dict(activation=label, product='thin', mode=1,
                            new_ms=new, old_ms=old, ratio=ratio))
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--shapes', type=activation, nargs='+',
                        default=None, help='BxCxHxW or BxCxHxW:cl')
    parser.add_argument('--repeats', type=int, default=15)
    parser.add_argument('--block', type=int, default=52,
                        help='columns of the thin block')
    parser.add_argument('--json', default=None, help='write records here')
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.block < 1:
        parser.error(f'--repeats and --block must be >= 1, got '
                     f'{args.repeats} and {args.block}')
    shapes = args.shapes or [activation(text) for text in SHAPES]
    records = []
    print(f"{'activation':>18} {'product':>7} {'mode':>4} {'new ms':>8} "
          f"{'old ms':>8} {'new / old':>9}")
    for label, x in shapes:
        for record in records_of(label, x, args.block, args.repeats):
            records.append(record)
            print(f"{label:>18} {record['product']:>7} {record['mode']:>4} "
                  f"{record['new_ms']:8.2f} {record['old_ms']:8.2f} "
                  f"{record['ratio']:8.2f}x")
    if args.json:
        write_json(args.json, records)


if __name__ == '__main__':
    main()
