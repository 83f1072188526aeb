"""Whether this device computes bfloat16 at a useful speed.

A processor without bfloat16 arithmetic (x86 with AVX2 but not AVX-512)
runs autocast's convolutions through slow fallbacks: on such a 2-core
machine one UPerNet training step took 209 s under bfloat16 autocast
against 1.6 s in float32. Timing one convolution both ways first tells a
planner not to probe autocast there, and a run to warn.
"""
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F

#: (batch, channels, side) of the timed 3 x 3 convolution: small on a CPU
#: (a slow dtype takes seconds there), larger on a GPU, where a small one
#: would time launch overheads rather than arithmetic.
SHAPES = dict(cpu=(1, 64, 32), cuda=(8, 128, 64))



def _median_seconds(run: Callable[[], None], device_type: str,
                    repeats: int) -> float:
    def sync():
        if device_type == 'cuda':
            torch.cuda.synchronize()

    def timed():
        sync()
        start = time.perf_counter()
        run()
        sync()
        return time.perf_counter() - start

    timed()
    return statistics.median(timed() for _ in range(repeats))


def autocast_slowdown(device_type: str = 'cpu',
                      dtype: torch.dtype = torch.bfloat16,
                      repeats: int = 3) -> float:
    """How many times longer a 3 x 3 convolution (:data:`SHAPES`) takes
    under autocast to ``dtype`` than in float32 on this device.

    It draws no random numbers, so the run that asks goes on with the
    random state it had.

    Args:
        device_type: 'cpu' or 'cuda'.
        dtype: The autocast dtype.
        repeats: Timed calls per way (median, after one warm-up).

    Returns:
        The ratio of the medians.
    """
    batch, channels, side = SHAPES[device_type]
    x = torch.full((batch, channels, side, side), 0.5, device=device_type)
    weight = torch.full((channels, channels, 3, 3), 0.01,
                        device=device_type)

    def plain():
        with torch.no_grad():
            F.conv2d(x, weight, padding=1)

    def mixed():
        with torch.no_grad(), torch.autocast(device_type, dtype=dtype):
            F.conv2d(x, weight, padding=1)

    return (_median_seconds(mixed, device_type, repeats) /
            _median_seconds(plain, device_type, repeats))
