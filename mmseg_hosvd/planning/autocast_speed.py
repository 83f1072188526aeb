"""Whether this device computes bfloat16 at a useful speed.

A processor without bfloat16 arithmetic (x86 with AVX2 but not AVX-512)
runs autocast's convolutions through slow fallbacks: on such a 2-core
machine one UPerNet training step took 209 s under bfloat16 autocast
against 1.6 s in float32. A planner probe of an autocast set-up would
then run for many minutes to measure a set-up it cannot recommend, so
the planner times one small convolution both ways first.
"""
import statistics
import time

import torch


def _median_seconds(run, device_type: str, repeats: int) -> float:
    def timed():
        start = time.perf_counter()
        run()
        if device_type == 'cuda':
            torch.cuda.synchronize()
        return time.perf_counter() - start

    timed()
    return statistics.median(timed() for _ in range(repeats))


def autocast_slowdown(device_type: str = 'cpu',
                      dtype: torch.dtype = torch.bfloat16,
                      repeats: int = 3) -> float:
    """How many times longer a 3 x 3 convolution (64 channels, 32 x 32)
    takes under autocast to ``dtype`` than in float32 on this device.

    Args:
        device_type: 'cpu' or 'cuda'.
        dtype: The autocast dtype.
        repeats: Timed calls per way (median, after one warm-up).

    Returns:
        The ratio of the medians.
    """
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(device_type)
    x = torch.randn(1, 64, 32, 32, device=device_type)

    def plain():
        with torch.no_grad():
            conv(x)

    def mixed():
        with torch.no_grad(), torch.autocast(device_type, dtype=dtype):
            conv(x)

    return (_median_seconds(mixed, device_type, repeats) /
            _median_seconds(plain, device_type, repeats))
