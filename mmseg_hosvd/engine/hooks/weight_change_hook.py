"""Record how much each fine-tuned convolution learned, and from what."""
from typing import Dict, List

import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS
from torch import nn

from .unwrap import unwrap_model

#: MessageHub runtime-info key and checkpoint-meta key of the record.
WEIGHT_CHANGE_KEY = 'weight_change'


def trainable_convs(model: nn.Module) -> Dict[str, List[nn.Parameter]]:
    """The trainable parameters of every convolution and Linear layer that
    trains.

    A convolution is a module with its own 4-D ``weight``, a Linear layer an
    ``nn.Linear`` (mmcv's subclasses it); it trains when that weight
    requires a gradient. Swapped layers reuse their Parameters, so they
    count as well.

    Args:
        model: The (unwrapped) model, already frozen for fine-tuning.

    Returns:
        Its trainable parameters (weight, bias) by module name, in module
        order.
    """
    convs = {}
    for name, module in model.named_modules():
        weight = module._parameters.get('weight')
        layer = weight is not None and (weight.dim() == 4
                                        or isinstance(module, nn.Linear))
        if layer and weight.requires_grad:
            convs[name] = [
                p for p in module.parameters(recurse=False)
                if p.requires_grad
            ]
    return convs


@HOOKS.register_module()
class WeightChangeHook(Hook):
    """Shows that every fine-tuned convolution learned, not only decayed.

    At ``before_train`` (after the checkpoint was loaded and
    :class:`CompressConvHook` froze the model and swapped its convolutions)
    the weights of every convolution that trains (see
    :func:`trainable_convs`: the fine-tuned ones, the preset's extra
    trainable ones and the classifier) are copied. Just
    before every optimizer step (a step pre-hook of the torch optimizer,
    which fires after MMEngine's gradient clipping and AMP unscaling) two
    sums are accumulated per convolution, over its weight and bias:

    * ``grad_sum`` = sum over steps of ``lr * ||grad||``, the gradient's
      part of what SGD applies;
    * ``decay_sum`` = sum over steps of ``lr * weight_decay * ||W||``, the
      weight decay's part.

    Momentum filters both parts with the same linear filter, so it is left
    out of both; each sum bounds how far its part can have moved the
    weights. The record, per convolution:

    * ``relative_change`` = ||W_end - W_start|| / ||W_start||;
    * ``grad_share`` = grad_sum / (grad_sum + decay_sum): near 1 when the
      gradient moved the layer, 0 when only weight decay did.

    It is logged at the end of training (one line per convolution), kept in
    MessageHub and written to every checkpoint's meta as
    ``weight_change``, with ``min_relative_change`` and ``min_grad_share``
    over the convolutions, where ``tools/test.py`` and ``compare.py`` read
    it. A resumed run measures from the resumed weights (``since_iter``).
    """

    priority = 'LOW'

    def __init__(self):
        self.layers: Dict[str, List[nn.Parameter]] = {}
        self.start: Dict[str, List[torch.Tensor]] = {}
        self.grad_sum: Dict[str, torch.Tensor] = {}
        self.decay_sum: Dict[str, torch.Tensor] = {}
        self.since_iter = 0
        self._handle = None
        self._groups: Dict[int, dict] = {}

    def before_train(self, runner) -> None:
        """Copies the fine-tuned weights and hooks the optimizer's step."""
        self.layers = trainable_convs(unwrap_model(runner.model))
        self.start = {
            name: [p.detach().clone() for p in params]
            for name, params in self.layers.items()
        }
        self.grad_sum = {
            name: params[0].new_zeros((), dtype=torch.float32)
            for name, params in self.layers.items()
        }
        self.decay_sum = {
            name: params[0].new_zeros((), dtype=torch.float32)
            for name, params in self.layers.items()
        }
        self.since_iter = runner.iter
        optimizer = runner.optim_wrapper.optimizer
        self._groups = {
            id(p): group
            for group in optimizer.param_groups for p in group['params']
        }
        self._handle = optimizer.register_step_pre_hook(self._before_step)

    @torch.no_grad()
    def _before_step(self, optimizer, args, kwargs) -> None:
        """Adds this step's gradient and weight-decay parts, per layer."""
        for name, params in self.layers.items():
            for param in params:
                if param.grad is None:
                    continue
                group = self._groups[id(param)]
                lr = float(group['lr'])
                self.grad_sum[name] += lr * param.grad.norm().float()
                self.decay_sum[name] += (lr * float(group['weight_decay']) *
                                         param.norm().float())

    @torch.no_grad()
    def record(self) -> dict:
        """The record as it stands now (see the class docstring)."""
        layers = {}
        for name, params in self.layers.items():
            moved = torch.stack([
                (p.detach() - s).norm() for p, s in zip(params,
                                                        self.start[name])
            ]).norm()
            base = torch.stack([s.norm() for s in self.start[name]]).norm()
            grad = float(self.grad_sum[name])
            decay = float(self.decay_sum[name])
            layers[name] = dict(
                relative_change=float(moved / base) if base > 0 else None,
                grad_share=grad / (grad + decay) if grad + decay > 0 else 0.0,
                grad_sum=grad,
                decay_sum=decay)
        changes = [v['relative_change'] for v in layers.values()
                   if v['relative_change'] is not None]
        return dict(
            layers=layers,
            since_iter=self.since_iter,
            min_relative_change=min(changes) if changes else None,
            min_grad_share=min((v['grad_share'] for v in layers.values()),
                               default=None))

    def after_train(self, runner) -> None:
        """Logs the record, one line per layer, and unhooks the optimizer."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        if not self.layers:
            return
        record = self.record()
        runner.message_hub.update_info(WEIGHT_CHANGE_KEY, record)
        lines = [
            f'  {name}: relative change {v["relative_change"]:.3g}, '
            f'gradient share {v["grad_share"]:.3f}'
            for name, v in record['layers'].items()
            if v['relative_change'] is not None
        ]
        runner.logger.info(
            'WeightChangeHook: weight change of the fine-tuned convolutions '
            f'since iteration {self.since_iter}:\n' + '\n'.join(lines))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Writes the record so far to the checkpoint's meta."""
        if self.layers:
            checkpoint.setdefault('meta', {})[WEIGHT_CHANGE_KEY] = (
                self.record())


__all__: List[str] = [
    'WeightChangeHook', 'WEIGHT_CHANGE_KEY', 'trainable_convs'
]
