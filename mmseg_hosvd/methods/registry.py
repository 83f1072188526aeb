"""The registry of fine-tuning methods."""
from mmengine.registry import Registry

#: Fine-tuning methods by name (see :class:`~.base.FinetuneMethod`). A
#: method registered here is accepted by ``CompressConvHook``,
#: ``compare.py`` and the benchmarks with no other edit; the embedded
#: protocol runs it once its config table has a setting of it.
FINETUNE_METHODS = Registry('fine-tuning method')
