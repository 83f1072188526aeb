"""MMEngine hooks registered in mmseg's HOOKS."""
from .activation_memory_hook import ActivationMemoryHook
from .compress_conv_hook import CompressConvHook
from .malloc_trim_hook import MallocTrimHook

__all__ = ['ActivationMemoryHook', 'CompressConvHook', 'MallocTrimHook']
