"""HOSVD-eps compression speed: Gram eigendecomposition vs full SVDs.

The reference runs a full ``torch.linalg.svd`` of each of the four unfoldings,
as the original authors' code does; ours takes the eigenvectors of each
unfolding's Gram matrix. Both run here, in the same process, on the same
activations; the script prints the time ratio and the ranks of both.

Usage::

    python benchmarks/decomposition.py [--eps 0.8 0.9] [--repeats 3]
        [--json benchmarks/results/decomposition.json]
"""
import argparse
import json
import os
import statistics
import time

import torch
from reference_hosvd import reference_hosvd

from mmseg_hosvd.ops import hosvd

SHAPES = [(8, 512, 16, 16), (8, 640, 32, 32), (8, 512, 64, 64)]


def realistic_activation(shape, seed=0):
    """Post-ReLU maps with spatial smoothness and channel correlation."""
    gen = torch.Generator().manual_seed(seed)
    b, c, h, w = shape
    base = torch.randn(b, 64, h // 4, w // 4, generator=gen)
    smooth = torch.nn.functional.interpolate(base, size=(h, w),
                                             mode='bilinear',
                                             align_corners=False)
    mix = torch.randn(c, 64, generator=gen) / 8
    x = torch.einsum('bkhw,ck->bchw', smooth, mix)
    return (x + 0.1 * torch.randn(shape, generator=gen)).relu()


def timed(fn, repeats):
    times = []
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--eps', type=float, nargs='+', default=[0.8, 0.9])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--json', default=None, help='write records here')
    args = parser.parse_args()
    records = []
    header = (f"{'shape':>18} {'eps':>4} {'gram s':>8} {'svd s':>8} "
              f"{'speed-up':>8}  ranks (gram / svd)")
    print(header)
    for shape in SHAPES:
        x = realistic_activation(shape)
        for eps in args.eps:
            t_gram, (core, _) = timed(lambda: hosvd(x, eps=eps), args.repeats)
            t_svd, (ref_core, _) = timed(lambda: reference_hosvd(x, eps),
                                         max(1, args.repeats - 1))
            ranks, ref_ranks = tuple(core.shape), tuple(ref_core.shape)
            record = dict(shape=list(shape), eps=eps, gram_s=t_gram,
                          svd_s=t_svd, speedup=t_svd / t_gram,
                          ranks=list(ranks), reference_ranks=list(ref_ranks),
                          max_rank_difference=max(
                              abs(a - b) for a, b in zip(ranks, ref_ranks)))
            records.append(record)
            print(f'{str(shape):>18} {eps:>4} {t_gram:8.3f} {t_svd:8.3f} '
                  f'{t_svd / t_gram:7.1f}x  {ranks} / {ref_ranks}')
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)),
                    exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(records, f, indent=2)


if __name__ == '__main__':
    main()
