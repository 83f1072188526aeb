"""Recompute the fine-tuned region in backward instead of storing it.

PyTorch's non-reentrant checkpointing (``use_reentrant=False``) works when
the region's input does not require grad, as behind a frozen prefix; the
reentrant form that MMEngine's ``activation_checkpointing`` key uses fails
there ("element 0 of tensors does not require grad").

The recomputation must store tensors of the same shapes as the forward did.
A HOSVD layer's warm start (:class:`~mmseg_hosvd.ops.WarmStart`) changes
with every forward, so the region's warm starts are set back, for the
recomputation, to what the forward started from, and then to what the
forward left: the recomputation finds the forward's ranks, and the next
step starts from the forward's vectors.
"""
import contextlib
from typing import Callable, List, Tuple

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..ops import warm_starts_in

#: Top-level parts of a segmentor that are checkpointed whole.
HEADS = ('neck', 'decode_head', 'auxiliary_head')


class _WarmStartReplay:
    """The warm starts of one checkpointed call: what the forward started
    from and what it left, replayed around the recomputation."""

    def __init__(self, module: nn.Module):
        self.starts = warm_starts_in(module)
        self.before = self.after = []

    @contextlib.contextmanager
    def forward(self):
        self.before = [start.snapshot() for start in self.starts]
        yield
        self.after = [start.snapshot() for start in self.starts]

    @contextlib.contextmanager
    def recompute(self):
        for start, kept in zip(self.starts, self.before, strict=True):
            start.restore(kept)
        yield
        for start, kept in zip(self.starts, self.after, strict=True):
            start.restore(kept)

    def contexts(self) -> Tuple[contextlib.AbstractContextManager,
                                contextlib.AbstractContextManager]:
        """``context_fn`` of :func:`torch.utils.checkpoint.checkpoint`."""
        return self.forward(), self.recompute()


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
        replay = _WarmStartReplay(self.module)
        return checkpoint(self.forward, *args, use_reentrant=False,
                          context_fn=replay.contexts, **kwargs)


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
