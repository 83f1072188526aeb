"""Activation checkpointing of the fine-tuned region, frozen prefix or not."""
from typing import List, Optional, Sequence

from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ...reductions.activation_checkpoint import (
    checkpoint_modules_,
    finetuned_blocks,
)
from ...selection.layer_selection import check_module_names, module_names
from .unwrap import unwrap_model


@HOOKS.register_module()
class ActivationCheckpointHook(Hook):
    """Recomputes the fine-tuned blocks in backward instead of storing them.

    At ``before_train``, after ``CompressConvHook`` froze the model (its
    priority is higher), each block holding trainable parameters (the
    decode head and neck whole, the backbone by stage) or each module of
    ``modules`` runs under PyTorch's non-reentrant checkpointing: backward
    recomputes its forward, and only its inputs are stored. Exact; it
    combines with every method (the compressed convolutions then compress
    again during the recomputation).

    Args:
        modules: Module names to checkpoint (one name or a list); None
            for the fine-tuned blocks.
    """

    priority = 'NORMAL'

    def __init__(self, modules: Optional[Sequence[str]] = None):
        self.requested = None if modules is None else module_names(
            modules, 'modules')
        self.modules: List[str] = []

    def before_train(self, runner) -> None:
        """Checkpoints the blocks and logs them."""
        self.modules = self.apply(unwrap_model(runner.model))
        runner.logger.info(
            f'ActivationCheckpointHook: recomputing {self.modules}')

    def apply(self, model) -> List[str]:
        """Checkpoints the blocks of ``model`` in place.

        Returns:
            Their names.

        Raises:
            ValueError: For a module name the model lacks.
        """
        names = self.requested
        if names is None:
            names = finetuned_blocks(model)
        check_module_names(model, names)
        checkpoint_modules_(model, names)
        return names
