"""Generates the embedded two-domain dataset (source / target) on disk.

Usage::

    python tools/generate_dataset.py [--root data/synthetic_shapes]
        [--size 128] [--seed 0] [--source-train 600] [--source-val 100]
        [--target-train 300] [--target-val 100]
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.utils import ProgressBar  # noqa: E402

from mmseg_hosvd.datasets import DEFAULT_SIZES, generate  # noqa: E402


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
    bar = ProgressBar(total)
    start = time.time()
    written = generate(args.root, sizes, args.size, args.seed,
                       progress=lambda n: bar.update(n))
    print(f'\nwrote {written} images to {args.root} in '
          f'{time.time() - start:.1f} s')


if __name__ == '__main__':
    main()
