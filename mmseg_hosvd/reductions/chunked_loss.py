"""The decode head's loss in batch chunks, keeping nothing full-size.

mmseg's ``loss_by_feat`` upsamples the logits to the labels' size and keeps
the full-resolution log-probabilities for backward (with 150 ADE20K classes
at 512 x 512 and batch 8: 1.2 GB). Here the head's own ``loss_by_feat``
runs on a few images at a time; each chunk's loss and its gradient with
respect to the low-resolution logits are taken at once, so only the logits'
gradient is kept for backward and only one chunk is full-size at a time.
The value is the same: the supported losses are means over all pixels (a
chunk weighs its share of the images), the accuracy a mean over the valid
pixels (a chunk weighs its share of them).
"""
from typing import List

import torch
from torch import nn
from torch.autograd.graph import saved_tensors_hooks

#: Loss modules whose value is a mean over every pixel of the batch.
PIXEL_MEAN_LOSSES = ('CrossEntropyLoss', )
ACCURACY_KEY = 'acc_seg'


def check_chunkable(head: nn.Module) -> None:
    """Checks that ``head``'s loss can be computed in chunks exactly.

    Raises:
        ValueError: Naming the loss (or the pixel sampler) that is not a
            mean over every pixel.
    """
    if getattr(head, 'sampler', None) is not None:
        raise ValueError(f'{type(head).__name__} samples pixels '
                         f'({type(head.sampler).__name__}): its loss is not '
                         'a mean over the batch and cannot be chunked')
    losses = head.loss_decode
    for loss in (losses if isinstance(losses, nn.ModuleList) else [losses]):
        name = type(loss).__name__
        settings = {
            key: getattr(loss, key, None)
            for key in ('avg_non_ignore', 'use_sigmoid', 'class_weight')
        }
        if name not in PIXEL_MEAN_LOSSES or any(
                value not in (None, False) for value in settings.values()):
            described = ', '.join(f'{k}={v}' for k, v in settings.items())
            raise ValueError(
                f'{name} ({described}) is not a mean over every pixel '
                '(mmseg divides a class-weighted or avg_non_ignore loss by '
                'other counts); the '
                f'chunked loss supports {list(PIXEL_MEAN_LOSSES)} without '
                'avg_non_ignore, use_sigmoid or class_weight')


def _same(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


def _valid_pixels(samples, ignore_index: int) -> List[int]:
    return [
        int((s.gt_sem_seg.data != ignore_index).sum()) for s in samples
    ]


class _ChunkedLoss(torch.autograd.Function):
    """Loss values in forward; their saved gradients in backward."""

    @staticmethod
    def forward(ctx, logits, run):
        values, grads, accuracy = run.compute(logits)
        ctx.save_for_backward(*grads)
        ctx.mark_non_differentiable(accuracy)
        return (*values, accuracy)

    @staticmethod
    def backward(ctx, *grad_outputs):
        grad = None
        # the last output, the accuracy, has no saved gradient
        for weight, saved in zip(grad_outputs[:-1], ctx.saved_tensors,
                                 strict=True):
            if weight is not None:
                term = weight * saved
                grad = term if grad is None else grad + term
        return grad, None


class ChunkedLossByFeat:
    """A head's ``loss_by_feat`` computed ``chunk`` images at a time.

    Args:
        head: The decode head.
        loss_by_feat: Its original (bound) ``loss_by_feat``.
        chunk: Images per chunk.
    """

    def __init__(self, head: nn.Module, loss_by_feat, chunk: int):
        check_chunkable(head)
        self.head = head
        self.loss_by_feat = loss_by_feat
        self.chunk = chunk
        self._samples = None
        self._keys: List[str] = []

    def __call__(self, seg_logits: torch.Tensor, batch_data_samples):
        if not (torch.is_grad_enabled() and seg_logits.requires_grad):
            return self.loss_by_feat(seg_logits, batch_data_samples)
        self._samples = batch_data_samples
        try:
            *values, accuracy = _ChunkedLoss.apply(seg_logits, self)
        finally:
            self._samples = None
        losses = dict(zip(self._keys, values, strict=True))
        losses[ACCURACY_KEY] = accuracy
        return losses

    def compute(self, logits: torch.Tensor):
        """Loss values, their gradients w.r.t. ``logits``, the accuracy."""
        samples, batch = self._samples, logits.shape[0]
        valid = _valid_pixels(samples, self.head.ignore_index)
        total_valid = max(sum(valid), 1)
        values, grads, accuracy = {}, {}, logits.new_zeros(1)
        for start in range(0, batch, self.chunk):
            part = logits[start:start + self.chunk].detach().requires_grad_()
            share = part.shape[0] / batch
            # grad on (autograd.Function.forward runs without), and the
            # chunk's own graph saved plainly: it is freed below, before the
            # forward ends, so a meter of what backward keeps must not see it
            with torch.enable_grad(), saved_tensors_hooks(_same, _same):
                losses = self.loss_by_feat(part,
                                           samples[start:start + self.chunk])
                keys = [k for k in losses if k != ACCURACY_KEY]
                weighted = [losses[k] * share for k in keys]
            for i, key in enumerate(keys):
                (grad, ) = torch.autograd.grad(weighted[i], part,
                                               retain_graph=i < len(keys) - 1)
                if key not in grads:
                    grads[key] = torch.zeros_like(logits)
                    values[key] = logits.new_zeros(())
                grads[key][start:start + part.shape[0]] = grad
                values[key] += losses[key].detach() * share
            chunk_valid = sum(valid[start:start + self.chunk])
            if chunk_valid:
                accuracy += losses[ACCURACY_KEY].detach().reshape(1).to(
                    accuracy.dtype) * chunk_valid / total_valid
            del losses, weighted, part
        self._keys = list(values)
        return ([values[k] for k in self._keys],
                [grads[k] for k in self._keys], accuracy)


def chunk_losses_(model: nn.Module, chunk: int) -> List[str]:
    """Makes every decode and auxiliary head compute its loss in chunks.

    Returns:
        The names of the heads changed.

    Raises:
        ValueError: For a head whose loss is not a mean over every pixel.
    """
    changed = []
    for name, module in model.named_modules():
        if hasattr(module, 'loss_by_feat') and hasattr(module,
                                                       'loss_decode'):
            module.loss_by_feat = ChunkedLossByFeat(module,
                                                    module.loss_by_feat,
                                                    chunk)
            changed.append(name)
    return changed
