"""MMEngine hooks registered in mmseg's HOOKS."""
from .activation_memory_hook import ActivationMemoryHook
from .checkpoint_fit_hook import CheckpointFitHook, check_checkpoint_fits
from .compress_conv_hook import CompressConvHook
from .finite_loss_hook import FiniteLossHook
from .malloc_trim_hook import MallocTrimHook

__all__ = [
    'ActivationMemoryHook', 'CheckpointFitHook', 'CompressConvHook',
    'FiniteLossHook', 'MallocTrimHook', 'check_checkpoint_fits'
]
