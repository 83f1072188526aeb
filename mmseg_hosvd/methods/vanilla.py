"""Vanilla: the selected layers train as plain convolutions and Linear
layers."""
from .base import FinetuneMethod
from .registry import FINETUNE_METHODS


@FINETUNE_METHODS.register_module(name='vanilla')
class Vanilla(FinetuneMethod):
    """Freezes the same layers as every method and compresses nothing."""

    name = 'vanilla'
    marker = 'o'
    order = 0
