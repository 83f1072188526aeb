"""Utilities without mm* dependencies."""
from .saved_tensor_meter import SavedTensorMeter, storage_key

__all__ = ['SavedTensorMeter', 'storage_key']
