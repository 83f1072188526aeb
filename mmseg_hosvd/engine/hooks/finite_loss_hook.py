"""Stop training at a non-finite loss or parameter, before a checkpoint of
it is saved."""
import os.path as osp

import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Raises at the first NaN or Inf loss or trained parameter, naming the
    kept checkpoint.

    Its priority runs it before MMEngine's ``CheckpointHook`` in
    ``after_train_iter``, so the diverged weights are never saved. The
    loss alone does not tell: a NaN gradient with a finite loss (float32
    LAPACK once returned NaN eigenvectors silently) makes every trained
    parameter NaN through the grad-norm clip, and the loss shows it only at
    the next iteration, after a checkpoint of those weights may have been
    saved. So the trained parameters are checked too. The protocol's
    configs set it in ``default_hooks`` (key ``finite_loss``).
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        """Checks the iteration's loss and the trained parameters.

        Args:
            runner: The runner.
            batch_idx: Index of the batch.
            data_batch: The batch.
            outputs: The train step's outputs, with ``loss``.

        Raises:
            FloatingPointError: When the loss or a trained parameter is not
                finite.
        """
        loss = (outputs or {}).get('loss')
        if loss is not None and not bool(
                torch.isfinite(torch.as_tensor(loss)).all()):
            self._stop(runner, f'loss is '
                       f'{float(torch.as_tensor(loss).float().mean())}')
        for name, param in runner.model.named_parameters():
            if param.requires_grad and not bool(torch.isfinite(param).all()):
                self._stop(runner, f'parameter {name} holds NaN or Inf after '
                           'the optimizer step (a gradient was not finite)')

    @staticmethod
    def _stop(runner, what: str) -> None:
        last = osp.join(runner.work_dir, 'last_checkpoint')
        kept = open(last).read().strip() if osp.isfile(last) else None
        raise FloatingPointError(
            f'{what} at iteration {runner.iter + 1}: training diverged and '
            'stopped. ' +
            (f'The last checkpoint, {kept}, is kept. ' if kept else
             'No checkpoint was saved before it. ') +
            'Lower the learning rate, or raise eps for svd/hosvd.')
