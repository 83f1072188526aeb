"""The decode head's loss in batch chunks: nothing full-size kept."""
from typing import List

from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ...reductions.chunked_loss import chunk_losses_
from ...reductions.frozen_prefix import check_micro_batch
from .unwrap import unwrap_model


@HOOKS.register_module()
class ChunkedLossHook(Hook):
    """Computes each head's loss ``chunk`` images at a time.

    At ``before_train`` every decode and auxiliary head's ``loss_by_feat``
    is replaced on the instance by
    :class:`~mmseg_hosvd.reductions.chunked_loss.ChunkedLossByFeat`: the same
    value and gradient (for losses that are means over every pixel, such
    as mmseg's cross-entropy; others are refused), without keeping the
    full-resolution logits for backward.

    Args:
        chunk: Images per chunk.
    """

    priority = 'NORMAL'

    def __init__(self, chunk: int = 1):
        self.chunk = check_micro_batch(chunk, 'chunk')
        self.heads: List[str] = []

    def before_train(self, runner) -> None:
        """Chunks the heads' losses and logs which."""
        self.heads = chunk_losses_(unwrap_model(runner.model), self.chunk)
        runner.logger.info(f'ChunkedLossHook: {self.heads} compute their '
                           f'loss {self.chunk} image(s) at a time')
