"""Generates the embedded two-domain dataset (source / target) on disk.

Usage::

    python tools/generate_dataset.py [--root data/synthetic_shapes]
        [--size 128] [--seed 0] [--source-train 600] [--source-val 100]
        [--target-train 300] [--target-val 100]
"""
import argparse
import sys
import time

from mmengine.utils import ProgressBar

from mmseg_hosvd.datasets import DEFAULT_SIZES, generate


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--root', default='data/synthetic_shapes')
    parser.add_argument('--size', type=int, default=128,
                        help='image side in pixels')
    parser.add_argument('--seed', type=int, default=0)
    for domain, splits in DEFAULT_SIZES.items():
        for split, count in splits.items():
            parser.add_argument(f'--{domain}-{split}', type=int, default=count,
                                help=f'images in {domain}/{split}')
    return parser.parse_args(argv)


def progress_reporter(total, stream=None):
    """A callback advancing a progress display by its argument.

    On a terminal a live bar is redrawn in place; otherwise (a pipe, a log
    file) one line is written at every tenth of ``total``, so that logs get
    about ten lines instead of one update per image.

    Args:
        total: The number of items to expect.
        stream: Where to write; stdout when None.

    Returns:
        A callable taking the number of items just finished.
    """
    stream = sys.stdout if stream is None else stream
    if stream.isatty():
        bar = ProgressBar(total, file=stream)
        return bar.update
    done = 0
    next_line = 1

    def report(count):
        nonlocal done, next_line
        done += count
        if done * 10 >= next_line * total or done == total:
            stream.write(f'{done}/{total} images ({100 * done // total}%)\n')
            stream.flush()
            next_line = done * 10 // total + 1

    return report


def main(argv=None):
    args = parse_args(argv)
    sizes = {
        domain: {
            split: getattr(args, f'{domain}_{split}')
            for split in splits
        }
        for domain, splits in DEFAULT_SIZES.items()
    }
    total = sum(sum(s.values()) for s in sizes.values())
    progress = progress_reporter(total)
    start = time.time()
    written = generate(args.root, sizes, args.size, args.seed,
                       progress=progress)
    print(f'\nwrote {written} images to {args.root} in '
          f'{time.time() - start:.1f} s')


if __name__ == '__main__':
    main()
