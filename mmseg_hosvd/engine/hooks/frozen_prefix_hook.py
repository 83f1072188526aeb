"""Run the frozen prefix in micro-batches: a lower peak, the same result."""
from typing import Dict, List, Optional, Sequence, Set

from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ...reductions.frozen_prefix import (
    check_micro_batch,
    frozen_prefix,
    micro_batch_prefix_,
)
from ...reductions.input_release import input_read_only_by
from ...reductions.unread_outputs import read_positions
from ...selection.model_trace import trace_model
from .unwrap import unwrap_model


@HOOKS.register_module()
class FrozenPrefixHook(Hook):
    """Runs everything before the first trainable module in micro-batches.

    At ``before_train``, after ``CompressConvHook`` froze the model (its
    priority is higher), one traced forward finds the largest frozen
    modules that run before any trainable one (see
    :func:`~mmseg_hosvd.reductions.frozen_prefix.frozen_prefix`); each then
    runs on ``micro_batch`` images at a time under ``no_grad`` and
    concatenates its outputs. Exact with frozen norm statistics (a norm
    layer in training mode stops the step with an error); it lowers the
    transient memory of the frozen forward, not what backward keeps.

    With ``drop_unread``, the outputs of those modules that the step never
    reads are not kept either: one more traced forward, of the loss path
    (decode and auxiliary heads), finds which positions of a tuple output
    are read (a ResNet backbone returns four feature maps, DeepLabV3's head
    reads one); the others are stand-ins without data, whose use raises
    an error naming them (see :mod:`~mmseg_hosvd.reductions.unread_outputs`).

    With ``release_input``, the preprocessed image batch is freed in each
    training step once the prefix's first module has read it, when one more
    traced forward of the loss path shows that this module receives the
    batch itself and that nothing reads it afterwards (see
    :mod:`~mmseg_hosvd.reductions.input_release`).

    Args:
        micro_batch: Images per micro-batch of the frozen prefix.
        drop_unread: Keep only the outputs the step reads.
        release_input: Free the input batch after the prefix read it.
        trace_input_shape: Input shape of the traced forwards.
    """

    priority = 'NORMAL'

    def __init__(self, micro_batch: int = 1, drop_unread: bool = True,
                 release_input: bool = True,
                 trace_input_shape: Sequence[int] = (2, 3, 64, 64)):
        self.micro_batch = check_micro_batch(micro_batch)
        for flag, value in (('drop_unread', drop_unread),
                            ('release_input', release_input)):
            if not isinstance(value, bool):
                raise ValueError(f'{flag} must be True or False, got '
                                 f'{value!r}')
        self.drop_unread = drop_unread
        self.release_input = release_input
        self.released: Optional[str] = None
        self.trace_input_shape = tuple(trace_input_shape)
        self.modules: List[str] = []
        self.kept: Dict[str, Set[int]] = {}

    def before_train(self, runner) -> None:
        """Finds the frozen prefix and micro-batches it."""
        self.modules = self.apply(unwrap_model(runner.model))
        runner.logger.info(
            f'FrozenPrefixHook: {len(self.modules)} frozen modules run in '
            f'micro-batches of {self.micro_batch}: {self.modules}; outputs '
            f'kept (by position; others are never read): {self.kept}; '
            f'input batch freed after: {self.released}')

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
        self.released = None
        if self.release_input and names and input_read_only_by(
                model, names[0], self.trace_input_shape):
            self.released = names[0]
        micro_batch_prefix_(model, names, self.micro_batch, self.kept,
                            self.released)
        return names
