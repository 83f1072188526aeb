"""HOSVD-eps compression speed: our two solvers vs full SVDs.

The reference runs a full ``torch.linalg.svd`` of each of the four unfoldings,
as the original authors' code does. Ours takes the eigenvectors of each
unfolding's Gram matrix (``solver='eigh'``, the paper's exact ranks), or, by
default (``solver='auto'``), finds the leading vectors of the large channel
mode by randomized subspace iteration. All run here, in the same process, on
the same activations; the script prints the time ratios to the reference and
the ranks of each.

Usage::

    python benchmarks/decomposition.py [--eps 0.8 0.9] [--repeats 3]
        [--shapes 8x512x16x16 ...]
        [--from-protocol [--models deeplabv3 pspnet] [--batches 3]]
        [--json benchmarks/results/decomposition.json]

``--from-protocol`` decomposes the inputs of the 5 fine-tuned layers of the
protocol's calibrated models on consecutive target batches (run
``tools/run_protocol.py`` first) instead of synthetic activations. It also
times the default solver as training runs it, warm-started from the same
layer's previous batch (``warm``; the first batch of each layer starts
cold).
"""
import argparse
import copy
import statistics
import time

import torch
from json_records import write_json
from reference_hosvd import reference_hosvd

from mmseg_hosvd.ops import WarmStart, hosvd

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


def activation_shape(text):
    """``BxCxHxW`` (H and W multiples of 4) as a shape tuple."""
    try:
        shape = tuple(int(part) for part in text.split('x'))
    except ValueError:
        shape = ()
    if len(shape) != 4 or min(shape) < 1 or shape[2] % 4 or shape[3] % 4:
        raise argparse.ArgumentTypeError(
            f'expected BxCxHxW with H and W multiples of 4, got {text!r}')
    return shape


def timed(fn, repeats):
    times = []
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--eps', type=float, nargs='+', default=[0.8, 0.9])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--shapes', type=activation_shape, nargs='+',
                        default=SHAPES,
                        help='synthetic activations, BxCxHxW')
    parser.add_argument('--from-protocol', action='store_true',
                        help='decompose the inputs of the 5 fine-tuned '
                        "layers of the protocol's calibrated DeepLabV3 and "
                        'PSPNet on 3 target batches instead')
    parser.add_argument('--models', nargs='+',
                        default=['deeplabv3', 'pspnet'],
                        help='protocol models of --from-protocol')
    parser.add_argument('--batches', type=int, default=3,
                        help='consecutive target batches of --from-protocol')
    parser.add_argument('--json', default=None, help='write records here')
    args = parser.parse_args(argv)
    records = []
    header = (f"{'activation':>46} {'eps':>4} {'svd s':>8} {'eigh s':>8} "
              f"{'auto s':>8} {'eigh x':>7} {'auto x':>7}  "
              f"ranks (svd / eigh / auto)")
    if args.from_protocol:
        header += ' / warm, warm s'
    print(header)
    if args.from_protocol:
        from protocol_inputs import finetuned_inputs
        activations = [(f'{model} {label}', x)
                       for model in args.models
                       for label, x in finetuned_inputs(
                           model, batches=args.batches)]
    else:
        activations = [(str(shape), realistic_activation(shape))
                       for shape in args.shapes]
    previous = {}  # the warm start of each layer and eps, batch to batch
    for label, x in activations:
        shape = tuple(x.shape)
        for eps in args.eps:
            t_eigh, (core, _) = timed(
                lambda x=x, eps=eps: hosvd(x, eps=eps, solver='eigh'),
                args.repeats)
            t_auto, (auto_core, _) = timed(
                lambda x=x, eps=eps: hosvd(x, eps=eps, solver='auto'),
                args.repeats)
            t_svd, (ref_core, _) = timed(
                lambda x=x, eps=eps: reference_hosvd(x, eps),
                max(1, args.repeats - 1))
            ranks, ref_ranks = tuple(core.shape), tuple(ref_core.shape)
            auto_ranks = tuple(auto_core.shape)
            record = dict(activation=label, shape=list(shape), eps=eps,
                          svd_s=t_svd,
                          eigh_s=t_eigh, auto_s=t_auto,
                          eigh_speedup=t_svd / t_eigh,
                          auto_speedup=t_svd / t_auto,
                          reference_ranks=list(ref_ranks),
                          eigh_ranks=list(ranks), auto_ranks=list(auto_ranks))
            line = (f'{label:>46} {eps:>4} {t_svd:8.3f} {t_eigh:8.3f} '
                    f'{t_auto:8.3f} {t_svd / t_eigh:6.1f}x '
                    f'{t_svd / t_auto:6.1f}x  {ref_ranks} / {ranks} / '
                    f'{auto_ranks}')
            if args.from_protocol:
                layer = (label.rsplit(' #', 1)[0], eps)
                start = previous.get(layer, WarmStart())
                t_warm, (warm_core, _) = timed(
                    lambda x=x, eps=eps, start=start: hosvd(
                        x, eps=eps, warm_start=copy.deepcopy(start)),
                    args.repeats)
                previous[layer] = start
                hosvd(x, eps=eps, warm_start=start)
                record.update(warm_s=t_warm,
                              warm_ranks=list(warm_core.shape))
                line += f' / {tuple(warm_core.shape)}, {t_warm:.4f}'
            records.append(record)
            print(line)
    if args.json:
        write_json(args.json, records)


if __name__ == '__main__':
    main()
