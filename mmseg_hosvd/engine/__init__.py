"""Engine components: hooks and an autocast optimizer wrapper."""
from .autocast_optim_wrapper import AutocastOptimWrapper
from .hooks import ActivationMemoryHook, CompressConvHook

__all__ = ['ActivationMemoryHook', 'AutocastOptimWrapper', 'CompressConvHook']
