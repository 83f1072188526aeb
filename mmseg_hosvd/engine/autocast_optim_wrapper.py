"""Mixed precision without a GPU: an optimizer wrapper that autocasts."""
import logging
from contextlib import contextmanager
from typing import Optional

import torch
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper
from mmseg.registry import OPTIM_WRAPPERS
from torch import nn

from ..utils.autocast_speed import autocast_slowdown

#: A dtype this many times slower than float32 (a convolution, timed on
#: the first step) gets a warning.
SLOW_FACTOR = 2.0

_DTYPES = {'bfloat16': torch.bfloat16, 'float16': torch.float16}


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """Runs the forward under ``torch.autocast`` on the model's device.

    MMEngine's ``AmpOptimWrapper`` refuses CPU training; bfloat16 needs no
    loss scaling, so on CPU this wrapper only autocasts. The compressed
    convolutions decompose in float32 whatever the autocast dtype. On its
    first use it times a convolution in the dtype against float32
    (:attr:`slowdown`) and warns when the dtype is more than
    :data:`SLOW_FACTOR` times slower (no bfloat16 arithmetic: about a
    hundred times, on an AVX2-only processor).

    Args:
        dtype: 'bfloat16' (default) or 'float16'.
        device_type: 'cpu' or 'cuda'; the model's device when None.
        **kwargs: As for ``OptimWrapper``.
    """

    def __init__(self,
                 dtype: str = 'bfloat16',
                 device_type: Optional[str] = None,
                 **kwargs):
        super().__init__(**kwargs)
        if dtype not in _DTYPES:
            raise ValueError(f'dtype must be one of {sorted(_DTYPES)}, got '
                             f'{dtype!r}')
        self.dtype = _DTYPES[dtype]
        self.device_type = device_type
        self.slowdown: Optional[float] = None

    @contextmanager
    def optim_context(self, model: nn.Module):
        device_type = self.device_type or next(model.parameters()).device.type
        if self.slowdown is None:
            self._time_the_dtype(device_type)
        with super().optim_context(model), torch.autocast(
                device_type=device_type, dtype=self.dtype):
            yield

    def _time_the_dtype(self, device_type: str) -> None:
        """Times a convolution in the autocast dtype against float32 once
        (:attr:`slowdown`) and warns when it is more than
        :data:`SLOW_FACTOR` times slower: a processor without bfloat16
        arithmetic runs a training step about a hundred times slower."""
        self.slowdown = autocast_slowdown(device_type, self.dtype)
        if self.slowdown > SLOW_FACTOR:
            name = str(self.dtype).replace('torch.', '')
            print_log(
                f'mixed precision: a {name} convolution takes '
                f'{self.slowdown:.0f} times as long as in float32 on this '
                f'{device_type}; training under autocast will be about '
                'that much slower (train without --amp, or on a processor '
                f'with {name} arithmetic)', logger='current',
                level=logging.WARNING)
