"""MMEngine hooks registered in mmseg's HOOKS."""
from .activation_memory_hook import ActivationMemoryHook
from .compress_conv_hook import CompressConvHook

__all__ = ['ActivationMemoryHook', 'CompressConvHook']
