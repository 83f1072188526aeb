"""Recompute the fine-tuned region in backward instead of storing it.

PyTorch's non-reentrant checkpointing (``use_reentrant=False``) works when
the region's input does not require grad, as behind a frozen prefix; the
reentrant form that MMEngine's ``activation_checkpointing`` key uses fails
there ("element 0 of tensors does not require grad").
"""
from typing import Callable, List

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

#: Top-level parts of a segmentor that are checkpointed whole.
HEADS = ('neck', 'decode_head', 'auxiliary_head')


class CheckpointedForward:
    """A module's forward under non-reentrant activation checkpointing.

    Args:
        module: The module.
        forward: Its original (bound) forward.
    """

    def __init__(self, module: nn.Module, forward: Callable):
        self.module = module
        self.forward = forward

    def __call__(self, *args, **kwargs):
        if not (self.module.training and torch.is_grad_enabled()):
            return self.forward(*args, **kwargs)
        return checkpoint(self.forward, *args, use_reentrant=False,
                          **kwargs)


def _has_trainable(module: nn.Module) -> bool:
    return any(p.requires_grad for p in module.parameters())


def finetuned_blocks(model: nn.Module) -> List[str]:
    """The blocks of a segmentor that hold trainable parameters.

    The neck and heads count whole; the backbone counts by stage (its
    children: ``backbone.layer4`` of a ResNet, ``backbone.layer7`` of a
    MobileNetV2).

    Args:
        model: An mmseg segmentor, already frozen.

    Returns:
        Module names.
    """
    blocks = [name for name in HEADS
              if hasattr(model, name) and isinstance(getattr(model, name),
                                                     nn.Module)
              and _has_trainable(getattr(model, name))]
    backbone = getattr(model, 'backbone', None)
    if isinstance(backbone, nn.Module):
        blocks = [
            f'backbone.{name}' for name, child in backbone.named_children()
            if _has_trainable(child)
        ] + blocks
    return blocks


def checkpoint_modules_(model: nn.Module, names: List[str]) -> None:
    """Checkpoints each named module (its ``forward``, on the instance)."""
    for name in names:
        module = model.get_submodule(name)
        module.forward = CheckpointedForward(module, module.forward)
