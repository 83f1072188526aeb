"""Record how much each fine-tuned convolution learned, and from what."""
from typing import Dict, List, Optional

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


class DecayOnlyPath:
    """How weight decay alone would have moved a weight from its start.

    Under weight decay alone every step scales the weight: W_t = c_t W_0,
    and SGD's momentum buffer is d_t W_0. Stepping c and d with the
    optimizer's own rule (``torch.optim.SGD`` with momentum, dampening and
    Nesterov, or AdamW's decoupled decay) gives the relative change
    ``1 - c`` that the decay alone would have made with the same learning
    rates and steps.
    """

    def __init__(self):
        self.scale = 1.0
        self.velocity = 0.0
        self.steps = 0
        self.supported = True

    def step(self, optimizer: torch.optim.Optimizer, group: dict) -> None:
        """One optimizer step with the hyper-parameters of ``group``."""
        lr = float(group['lr'])
        decay = float(group.get('weight_decay', 0.))
        if isinstance(optimizer, torch.optim.AdamW):
            self.scale *= 1. - lr * decay
        elif isinstance(optimizer, torch.optim.SGD):
            update = decay * self.scale
            momentum = float(group.get('momentum', 0.))
            if momentum:
                self.velocity = update if self.steps == 0 else (
                    momentum * self.velocity +
                    (1. - float(group.get('dampening', 0.))) * update)
                update = (update + momentum * self.velocity
                          if group.get('nesterov') else self.velocity)
            self.scale -= lr * update
        else:
            self.supported = False
        self.steps += 1

    @property
    def relative_change(self) -> Optional[float]:
        """``|1 - c|``, or None for an optimizer it cannot follow."""
        return abs(1. - self.scale) if self.supported else None


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
      gradient moved the layer, 0 when only weight decay did;
    * ``decay_only_change``: the relative change that weight decay alone
      would have made over the same steps (:class:`DecayOnlyPath`, momentum
      included), and ``change_over_decay`` = relative_change /
      decay_only_change (None without weight decay).

    It is logged at the end of training (one line per convolution), kept in
    MessageHub and written to every checkpoint's meta as
    ``weight_change``, with ``min_relative_change``, ``min_grad_share``
    and ``min_change_over_decay`` over the convolutions, where
    ``tools/test.py`` and ``compare.py`` read it. A resumed run measures
    from the resumed weights (``since_iter``).
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
        self.decay_only: Dict[str, DecayOnlyPath] = {}

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
        self.decay_only = {name: DecayOnlyPath() for name in self.layers}
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
            if params[0].grad is not None:
                self.decay_only[name].step(optimizer,
                                           self._groups[id(params[0])])
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
                                                        self.start[name],
                                                        strict=True)
            ]).norm()
            base = torch.stack([s.norm() for s in self.start[name]]).norm()
            grad = float(self.grad_sum[name])
            decay = float(self.decay_sum[name])
            change = float(moved / base) if base > 0 else None
            decay_only = self.decay_only[name].relative_change
            layers[name] = dict(
                relative_change=change,
                grad_share=grad / (grad + decay) if grad + decay > 0 else 0.0,
                grad_sum=grad,
                decay_sum=decay,
                decay_only_change=decay_only,
                change_over_decay=(change / decay_only
                                   if change is not None and decay_only
                                   else None))

        def least(key):
            values = [v[key] for v in layers.values() if v[key] is not None]
            return min(values) if values else None

        return dict(
            layers=layers,
            since_iter=self.since_iter,
            min_relative_change=least('relative_change'),
            min_grad_share=least('grad_share'),
            min_change_over_decay=least('change_over_decay'))

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
            f'  {name}: relative change {v["relative_change"]:.3g}'
            + (f' ({v["change_over_decay"]:.1f}x weight decay alone)'
               if v['change_over_decay'] is not None else '')
            + f', gradient share {v["grad_share"]:.3f}'
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
