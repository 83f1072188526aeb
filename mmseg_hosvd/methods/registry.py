"""The registry of fine-tuning methods."""
from mmengine.registry import Registry

#: Fine-tuning methods by name (see :class:`~.base.FinetuneMethod`). A
#: method registered here is accepted by ``CompressConvHook``, the protocol
#: runner, ``compare.py`` and the benchmarks with no other edit.
FINETUNE_METHODS = Registry('fine-tuning method')
