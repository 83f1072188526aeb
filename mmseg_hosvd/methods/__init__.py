"""Fine-tuning methods: each one is defined once, in its own file.

A method is a :class:`FinetuneMethod` subclass registered in
:data:`FINETUNE_METHODS`; ``CompressConvHook``, ``compare.py`` and the
benchmarks read everything about it from there. Its rows in the embedded
protocol are entries of
:data:`~mmseg_hosvd.protocol.config_table.SETTINGS`.
"""
from .base import FinetuneMethod
from .lookup import accepted_options, get_method, method_names, split_options
from .options import Option
from .registry import FINETUNE_METHODS
from .session import MethodSession, SessionChain

from . import gradient_filter, hosvd, hosvd_subspace, quantized, svd, vanilla  # noqa: F401,E501  # isort: skip

__all__ = [
    'FINETUNE_METHODS', 'FinetuneMethod', 'MethodSession', 'SessionChain',
    'Option', 'accepted_options', 'get_method', 'method_names', 'split_options'
]
