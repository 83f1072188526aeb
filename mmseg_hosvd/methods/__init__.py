"""Fine-tuning methods: each one is defined once, in its own file.

A method is a :class:`FinetuneMethod` subclass registered in
:data:`FINETUNE_METHODS`; ``CompressConvHook``, the protocol runner,
``compare.py`` and the benchmarks read everything about it from there.
"""
from .base import FinetuneMethod, MethodSession
from .lookup import (
    LEAN_OPTIONS,
    accepted_options,
    all_methods,
    get_method,
    method_names,
    protocol_tags,
    setting_tag,
    split_options,
)
from .options import Option
from .registry import FINETUNE_METHODS

from . import gradient_filter, hosvd, hosvd_subspace, quantized, svd, vanilla  # noqa: F401,E501  # isort: skip

__all__ = [
    'FINETUNE_METHODS', 'FinetuneMethod', 'LEAN_OPTIONS', 'MethodSession',
    'Option', 'accepted_options', 'all_methods', 'get_method',
    'method_names', 'protocol_tags', 'setting_tag', 'split_options'
]
