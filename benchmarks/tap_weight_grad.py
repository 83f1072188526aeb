"""A convolution's weight gradient tap by tap, against PyTorch's kernel.

The quantized method rebuilds each stored input a batch slice at a time
and forms the weight gradient of every slice
(:func:`~mmseg_hosvd.ops.conv2d_weight_grad_by_taps`). This benchmark
times that, summed over the slices of a batch, against PyTorch's weight
gradient (:func:`~mmseg_hosvd.ops.conv_geometry.conv2d_weight_grad`, the
CPU kernel) on the same slices in the same run, and measures each way's
transient: the most bytes the allocator held at once over what was live
before (PyTorch's profiler memory timeline), gradient included.

Usage::

    python benchmarks/tap_weight_grad.py [--repeats 5] [--slice 1]
        [--convs aspp12 aspp24 aspp36 bottleneck ...] [--json PATH]

The default convolutions are the protocol models' fine-tuned 3 x 3
convolutions at a 128 x 128 crop (output stride 8: 16 x 16 maps, batch 8)
and DeepLabV3's ASPP branches at 512 x 512 (64 x 64 maps). Values are
random: neither way's time depends on them.
"""
import argparse
import statistics
import time

import torch
from json_records import write_json

from mmseg_hosvd.ops import ConvGeometry, conv2d_weight_grad_by_taps
from mmseg_hosvd.ops.conv_geometry import conv2d_weight_grad
from mmseg_hosvd.utils.step_memory import transient_peak_bytes

#: name -> (in channels, out channels, map side, dilation): 3 x 3
#: convolutions, padding equal to the dilation, batch 8.
CONVS = {
    'aspp12': (512, 128, 16, 12),
    'aspp24': (512, 128, 16, 24),
    'aspp36': (512, 128, 16, 36),
    'bottleneck': (640, 128, 16, 1),
    'psp-bottleneck': (1024, 128, 16, 1),
    'aspp12-512px': (512, 128, 64, 12),
    'aspp36-512px': (512, 128, 64, 36),
}
BATCH = 8


def median_seconds(fn, repeats):
    """Median seconds of ``repeats`` calls of ``fn`` after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(name, slice_size, repeats):
    """The record of one convolution: both ways' median seconds over the
    batch, their ratio and their transients (MB)."""
    in_channels, out_channels, side, dilation = CONVS[name]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, in_channels, side, side, generator=gen)
    grad_out = torch.randn(BATCH, out_channels, side, side, generator=gen)
    geo = ConvGeometry.make(1, dilation, dilation)
    shape = (out_channels, in_channels, 3, 3)
    slices = [slice(s, s + slice_size) for s in range(0, BATCH, slice_size)]

    def kernel():
        total = None
        for rows in slices:
            grad = conv2d_weight_grad(x[rows], shape, grad_out[rows], geo)
            total = grad if total is None else total.add_(grad)
        return total

    def taps():
        total = None
        for rows in slices:
            total = conv2d_weight_grad_by_taps(x[rows], shape,
                                               grad_out[rows], geo, total)
        return total

    torch.testing.assert_close(taps(), kernel(), rtol=1e-4, atol=1e-3)
    kernel_s = median_seconds(kernel, repeats)
    taps_s = median_seconds(taps, repeats)
    mb = 1024 * 1024
    return dict(conv=name, input=[BATCH, in_channels, side, side],
                dilation=dilation, slice=slice_size,
                kernel_s=kernel_s, taps_s=taps_s,
                time_ratio=taps_s / kernel_s,
                kernel_transient_mb=transient_peak_bytes(kernel) / mb,
                taps_transient_mb=transient_peak_bytes(taps) / mb,
                threads=torch.get_num_threads())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--convs', nargs='+', choices=list(CONVS),
                        default=list(CONVS))
    parser.add_argument('--slice', type=int, default=1,
                        help='samples per slice (the quantized backward '
                        'takes one sample at the protocol sizes)')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--json', help='write the records here')
    args = parser.parse_args(argv)
    if not 1 <= args.slice <= BATCH:
        parser.error(f'--slice must be in [1, {BATCH}], got {args.slice}')
    if args.repeats < 1:
        parser.error(f'--repeats must be >= 1, got {args.repeats}')
    records = [measure(name, args.slice, args.repeats)
               for name in args.convs]
    print(f'batch {BATCH} in slices of {args.slice}, '
          f'{torch.get_num_threads()} thread(s)')
    print('| convolution | input | kernel (ms) | taps (ms) | taps / kernel '
          '| kernel transient (MB) | taps transient (MB) |')
    print('|---|---|---|---|---|---|---|')
    for r in records:
        print(f"| {r['conv']} | {'x'.join(map(str, r['input']))}, dilation "
              f"{r['dilation']} | {r['kernel_s'] * 1e3:.1f} | "
              f"{r['taps_s'] * 1e3:.1f} | {r['time_ratio']:.2f} | "
              f"{r['kernel_transient_mb']:.1f} | "
              f"{r['taps_transient_mb']:.1f} |")
    if args.json:
        write_json(args.json, records)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
