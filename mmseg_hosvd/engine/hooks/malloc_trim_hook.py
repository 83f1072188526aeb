"""Returns the C heap's free pages to the OS every few iterations."""
import ctypes
import ctypes.util
from typing import Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from ...ops.checks import check_int_at_least


def load_glibc_malloc_trim() -> Optional[ctypes._CFuncPtr]:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    name = ctypes.util.find_library('c')
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


@HOOKS.register_module()
class MallocTrimHook(Hook):
    """Calls glibc's ``malloc_trim(0)`` every ``interval`` iterations.

    HOSVD-eps picks new ranks every batch, so the tensors of the compressed
    region change size from step to step. On CPU, glibc's allocator serves
    them from its heap once its dynamic mmap threshold has risen, and keeps
    the freed, fragmented pages: the process RSS then creeps up by tens of
    MB per thousand iterations although nothing is retained (the saved
    tensors stay flat; vanilla fine-tuning, with fixed sizes, stays flat).
    ``malloc_trim`` hands the free pages back (the README's long-run
    benchmark measures the growth, the trim's cost and the alternative of a
    fixed mmap threshold). Where the C library is not glibc, the hook logs
    that once and does nothing.

    Args:
        interval: Iterations between two trims, >= 1.
    """

    priority = 'LOWEST'

    def __init__(self, interval: int = 50):
        self.interval = check_int_at_least('interval', interval, 1)
        self._trim = load_glibc_malloc_trim()
        if self._trim is None:
            print_log('MallocTrimHook: no glibc malloc_trim here; the hook '
                      'does nothing', logger='current')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        """Trims the heap every ``interval`` iterations."""
        if self._trim is not None and self.every_n_train_iters(
                runner, self.interval):
            self._trim(0)
