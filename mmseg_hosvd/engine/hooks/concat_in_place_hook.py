"""A head's branches written straight into its concatenation: a lower
peak, the same result."""
from typing import List

from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ...reductions.concat_in_place import CONCAT_HEADS, concat_in_place_
from .unwrap import unwrap_model


@HOOKS.register_module()
class ConcatInPlaceHook(Hook):
    """Writes the branches of ASPP, PSP, SegFormer and UPerNet heads into
    one preallocated concatenation, one branch at a time.

    mmseg's heads keep every branch output in a list until their method
    returns, beside the concatenation made from it. At ``before_train``
    each such head's method is replaced on the instance by
    :func:`~mmseg_hosvd.reductions.concat_in_place.concat_in_place_`'s:
    the same values and gradients, without the list. It lowers the
    forward's peak by the branch outputs that nothing else keeps (upsampled
    maps, frozen branches: on SegFormer-B0 the four upsampled stage
    features), whatever the fine-tuning method. The lean region
    (``CompressConvHook(lean=True)``) already does this.

    It runs before the ``NORMAL``-priority hooks, so that activation
    checkpointing wraps the head's new method rather than being undone by
    it. A model without a head of exactly those types (a subclass such as
    DeepLabV3+'s has a forward of its own) is left as it is, with a
    warning.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self):
        self.heads: List[str] = []

    def before_train(self, runner) -> None:
        """Swaps the heads' methods and logs which."""
        self.heads = concat_in_place_(unwrap_model(runner.model))
        if self.heads:
            runner.logger.info(f'ConcatInPlaceHook: {self.heads} write '
                               'their branches into the concatenation')
        else:
            kinds = ', '.join(sorted(t.__name__ for t in CONCAT_HEADS))
            runner.logger.warning(
                'ConcatInPlaceHook: the model has no head of exactly the '
                f'types {kinds}; nothing changed')
