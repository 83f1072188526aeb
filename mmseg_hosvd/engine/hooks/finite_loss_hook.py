"""Stop training at a non-finite loss, before a checkpoint of it is saved."""
import os.path as osp

import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Raises at the first NaN or Inf loss, naming the kept checkpoint.

    Its priority runs it before MMEngine's ``CheckpointHook`` in
    ``after_train_iter``, so the diverged weights are never saved. The
    protocol's configs set it in ``default_hooks`` (key ``finite_loss``).
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        """Checks the iteration's loss.

        Args:
            runner: The runner.
            batch_idx: Index of the batch.
            data_batch: The batch.
            outputs: The train step's outputs, with ``loss``.

        Raises:
            FloatingPointError: When the loss is not finite.
        """
        loss = (outputs or {}).get('loss')
        if loss is None or bool(torch.isfinite(torch.as_tensor(loss)).all()):
            return
        last = osp.join(runner.work_dir, 'last_checkpoint')
        kept = open(last).read().strip() if osp.isfile(last) else None
        raise FloatingPointError(
            f'loss is {float(torch.as_tensor(loss).float().mean())} at '
            f'iteration {runner.iter + 1}: training diverged and stopped. '
            + (f'The last checkpoint, {kept}, is kept. ' if kept else
               'No checkpoint was saved before it. ') +
            'Lower the learning rate, or raise eps for svd/hosvd.')
