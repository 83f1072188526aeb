"""Mixed precision without a GPU: an optimizer wrapper that autocasts."""
from contextlib import contextmanager
from typing import Optional

import torch
from mmengine.optim import OptimWrapper
from mmseg.registry import OPTIM_WRAPPERS
from torch import nn

_DTYPES = {'bfloat16': torch.bfloat16, 'float16': torch.float16}


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """Runs the forward under ``torch.autocast`` on the model's device.

    MMEngine's ``AmpOptimWrapper`` refuses CPU training; bfloat16 needs no
    loss scaling, so on CPU this wrapper only autocasts. The compressed
    convolutions decompose in float32 whatever the autocast dtype.

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

    @contextmanager
    def optim_context(self, model: nn.Module):
        device_type = self.device_type or next(model.parameters()).device.type
        with super().optim_context(model), torch.autocast(
                device_type=device_type, dtype=self.dtype):
            yield
