"""Engine components: hooks."""
from .hooks import ActivationMemoryHook, CompressConvHook

__all__ = ['ActivationMemoryHook', 'CompressConvHook']
