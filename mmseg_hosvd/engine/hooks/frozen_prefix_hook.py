"""Run the frozen prefix in micro-batches: a lower peak, the same result."""
from typing import Dict, List, Sequence, Set

from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ...models.frozen_prefix import (check_micro_batch, frozen_prefix,
                                     micro_batch_prefix_)
from ...models.model_trace import trace_model
from ...models.unread_outputs import read_positions
from .unwrap import unwrap_model


@HOOKS.register_module()
class FrozenPrefixHook(Hook):
    """Runs everything before the first trainable module in micro-batches.

    At ``before_train``, after ``CompressConvHook`` froze the model (its
    priority is higher), one traced forward finds the largest frozen
    modules that run before any trainable one (see
    :func:`~mmseg_hosvd.models.frozen_prefix.frozen_prefix`); each then
    runs on ``micro_batch`` images at a time under ``no_grad`` and
    concatenates its outputs. Exact with frozen norm statistics (a norm
    layer in training mode stops the step with an error); it lowers the
    transient memory of the frozen forward, not what backward keeps.

    With ``drop_unread``, the outputs of those modules that the step never
    reads are not kept either: one more traced forward, of the loss path
    (decode and auxiliary heads), finds which positions of a tuple output
    are read (a ResNet backbone returns four feature maps, DeepLabV3's head
    reads one); the others are stand-ins without data, whose use raises
    an error naming them (see :mod:`~mmseg_hosvd.models.unread_outputs`).

    Args:
        micro_batch: Images per micro-batch of the frozen prefix.
        drop_unread: Keep only the outputs the step reads.
        trace_input_shape: Input shape of the traced forwards.
    """

    priority = 'NORMAL'

    def __init__(self, micro_batch: int = 1, drop_unread: bool = True,
                 trace_input_shape: Sequence[int] = (2, 3, 64, 64)):
        self.micro_batch = check_micro_batch(micro_batch)
        if not isinstance(drop_unread, bool):
            raise ValueError(f'drop_unread must be True or False, got '
                             f'{drop_unread!r}')
        self.drop_unread = drop_unread
        self.trace_input_shape = tuple(trace_input_shape)
        self.modules: List[str] = []
        self.kept: Dict[str, Set[int]] = {}

    def before_train(self, runner) -> None:
        """Finds the frozen prefix and micro-batches it."""
        self.modules = self.apply(unwrap_model(runner.model))
        runner.logger.info(
            f'FrozenPrefixHook: {len(self.modules)} frozen modules run in '
            f'micro-batches of {self.micro_batch}: {self.modules}; outputs '
            f'kept (by position; others are never read): {self.kept}')

    def apply(self, model) -> List[str]:
        """Micro-batches the frozen prefix of ``model`` in place.

        Returns:
            The names of the micro-batched modules.
        """
        names = frozen_prefix(
            model, trace_model(model, input_shape=self.trace_input_shape))
        self.kept = {}
        if self.drop_unread:
            for name in names:
                positions = read_positions(model, name,
                                           self.trace_input_shape)
                if positions is not None:
                    self.kept[name] = positions
        micro_batch_prefix_(model, names, self.micro_batch, self.kept)
        return names
