"""Utilities without mm* dependencies."""
from .running_module import OUTSIDE, RunningModule
from .saved_tensor_meter import SavedTensorMeter, storage_key

__all__ = ['OUTSIDE', 'RunningModule', 'SavedTensorMeter', 'storage_key']
