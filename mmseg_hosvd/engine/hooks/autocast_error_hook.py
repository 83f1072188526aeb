"""Measure what mixed precision costs the fine-tuned layers' gradients."""
from typing import List, Optional

from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ...planning.autocast_error import (
    AUTOCAST_ERROR_KEY,
    autocast_gradient_errors,
)
from ...planning.batch_loss import batch_loss
from ..autocast_optim_wrapper import AutocastOptimWrapper
from .compress_conv_hook import CompressConvHook
from .unwrap import unwrap_model
from .weight_change_hook import trainable_convs


def fine_tuned_layers(runner, model) -> List[str]:
    """The layers whose gradient error counts.

    Args:
        runner: The MMEngine runner.
        model: Its unwrapped model.

    Returns:
        The fine-tuned layers of the run's ``CompressConvHook`` plan (those
        the compressed methods' errors are measured on), else every
        convolution and Linear layer that trains.
    """
    for hook in runner.hooks:
        if isinstance(hook, CompressConvHook) and hook.plan is not None:
            return list(hook.plan.compressed)
    return list(trainable_convs(model))


@HOOKS.register_module()
class AutocastErrorHook(Hook):
    """On the first training batch, measures the fine-tuned layers'
    relative weight-gradient error under the run's autocast against
    float32
    (:func:`~mmseg_hosvd.planning.autocast_error.autocast_gradient_errors`):
    the layers of the ``CompressConvHook`` plan, as the compressed methods'
    errors count them, or without one every trained convolution and Linear
    layer. Both backwards run the layers as the run has them, so in a
    compressed run the reference is the compressed layers' float32
    gradient.

    The record (``dtype``; ``whole_relative_error``: the layers' weight
    gradients taken as one vector, what ``tools/plan.py`` ranks by;
    ``relative_error``: the sum of the layers' own; ``layers``: each
    layer's) is logged, kept in MessageHub (so a resumed
    run keeps it without measuring again) and written into every
    checkpoint's meta as ``autocast_gradient_error``. The measurement puts
    back what it changed, so training goes on as without it.
    ``tools/plan.py`` adds it to its mixed-precision probes.

    The run must train with ``AutocastOptimWrapper`` (``--amp`` on CPU, or
    ``optim_wrapper = dict(type='AutocastOptimWrapper', ...)``); a
    float16 run with loss scaling (MMEngine's ``AmpOptimWrapper``) is not
    measured.
    """

    priority = 'LOW'

    def __init__(self):
        self.record: Optional[dict] = None

    def before_train(self, runner) -> None:
        """Checks the optimizer wrapper; takes a resumed run's record."""
        wrapper = runner.optim_wrapper
        if not isinstance(wrapper, AutocastOptimWrapper):
            raise ValueError(
                'AutocastErrorHook measures the gradient error of '
                "autocast: train with optim_wrapper type "
                f"'AutocastOptimWrapper', not {type(wrapper).__name__}")
        self.record = runner.message_hub.get_info(AUTOCAST_ERROR_KEY, None)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        """Measures on the first batch of the run."""
        if self.record is not None:
            return
        model = unwrap_model(runner.model)
        layers = {name: model.get_submodule(name)
                  for name in fine_tuned_layers(runner, model)}
        wrapper = runner.optim_wrapper
        measured = autocast_gradient_errors(
            model, layers, batch_loss(model, data_batch),
            lambda: wrapper.optim_context(model))
        errors = measured.layers
        self.record = dict(dtype=str(wrapper.dtype).replace('torch.', ''),
                           whole_relative_error=measured.whole,
                           relative_error=sum(errors.values()),
                           layers=errors)
        runner.message_hub.update_info(AUTOCAST_ERROR_KEY, self.record)
        whole = measured.whole
        runner.logger.info(
            f"autocast ({self.record['dtype']}): relative weight-gradient "
            f"error {'-' if whole is None else f'{whole:.4g}'} of the "
            f'{len(errors)} layers together, '
            f"{self.record['relative_error']:.4g} summed over them: "
            + ', '.join(f'{n} {e:.3g}' for n, e in errors.items()))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Writes the record into the checkpoint's meta."""
        if self.record is not None:
            checkpoint.setdefault('meta', {})[AUTOCAST_ERROR_KEY] = (
                self.record)
