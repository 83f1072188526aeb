"""Swap ``nn.MultiheadAttention`` for explicit Linear projections."""
import copy
from typing import List

from mmengine.hooks import Hook
from mmengine.model import BaseModule, is_model_wrapper
from mmengine.optim import OptimWrapper
from mmseg.registry import HOOKS

from ...selection.attention_swap import (
    explicit_attention_,
    find_attention,
    replaced_parameters,
)
from ..optimizer_rebind import rebind_parameters_
from .unwrap import unwrap_model


@HOOKS.register_module()
class ExplicitAttentionHook(Hook):
    """Makes attention projections ordinary ``nn.Linear`` layers.

    Swaps every ``nn.MultiheadAttention`` (mmcv's ``MultiheadAttention``
    wrapper in MiT/SegFormer and ViT holds one) for an
    :class:`~mmseg_hosvd.models.ExplicitMultiheadAttention`: the same
    outputs and gradients, the same state-dict keys, and q/k/v/out
    projections that ``CompressConvHook`` can then select, fine-tune and
    compress. Put it in ``custom_hooks`` before ``CompressConvHook`` (its
    priority runs it first anyway).

    When: MMEngine's ``Runner.train()`` builds the optimizer and parameter
    schedulers, calls ``before_run``, initialises the weights, loads
    ``load_from`` or resumes, and only then calls ``before_train``. The
    swap replaces the packed q/k/v Parameters by new ones, so it happens at
    ``before_run`` (this hook's priority runs it first), where:

    - the weights of an MMEngine ``BaseModule`` are initialised first, as
      the Runner would do right after (it then only warns that
      ``init_weights`` ran twice), so that a run from scratch starts from
      the weights it would have unswapped (a backbone's own init would
      otherwise treat the new projections as any ``nn.Linear``);
    - in the optimizer, each packed Parameter is replaced by its q, k and v
      parts in the same parameter group, with the same options (see
      :func:`~mmseg_hosvd.engine.optimizer_rebind.rebind_parameters_`);
    - ``load_from`` and ``--resume`` then load checkpoints into the swapped
      model through its state-dict mapping, and a resumed optimizer state
      (saved by a swapped run) matches the rebound groups;
    - a model wrapped for distributed training is wrapped again, so that
      DistributedDataParallel synchronises the new Parameters.

    Checkpoints keep ``nn.MultiheadAttention``'s keys: they load into the
    model without this hook. Outside training (``Runner.test()``), the
    swap is made without touching the weights or an optimizer.
    """

    priority = 'VERY_HIGH'

    def __init__(self):
        self.swapped: List[str] = []

    def before_run(self, runner) -> None:
        """Swaps the attention modules and rebinds the optimizer."""
        model = unwrap_model(runner.model)
        old = find_attention(model)
        training = isinstance(runner.optim_wrapper, OptimWrapper)
        if old and training and isinstance(
                model, BaseModule) and not model.is_init:
            model.init_weights()
        self.swapped = explicit_attention_(model)
        replaced = {}
        for name in self.swapped:
            replaced.update(
                replaced_parameters(old[name], model.get_submodule(name)))
        rebound = 0
        if training:
            rebound = rebind_parameters_(runner.optim_wrapper, replaced)
        if self.swapped and is_model_wrapper(runner.model):
            runner.model = runner.wrap_model(
                copy.deepcopy(runner.cfg.get('model_wrapper_cfg')), model)
        runner.logger.info(
            f'ExplicitAttentionHook: {len(self.swapped)} '
            f'nn.MultiheadAttention swapped for ExplicitMultiheadAttention '
            f'({rebound} packed Parameters rebound in the optimizer): '
            f'{self.swapped}')
