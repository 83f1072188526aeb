"""The warm start a HOSVD module keeps between training steps."""
from typing import Optional

from ..ops import WarmStart, check_warm_start


class WarmStarted:
    """Mixin of the modules whose randomized solver starts from the step
    before (see :class:`~mmseg_hosvd.ops.WarmStart`).

    The kept vectors are not parameters or buffers: ``.to()``, ``.cuda()``
    and ``.double()`` do not move them, so they are dropped instead, and
    the next step starts cold on the new device or dtype.
    """

    warm_start: Optional[WarmStart]

    def init_warm_start(self, warm_start: bool) -> None:
        """Keeps a :class:`~mmseg_hosvd.ops.WarmStart` if ``warm_start``.

        Raises:
            ValueError: If ``warm_start`` is not a bool, naming it.
        """
        self.warm_start = WarmStart() if check_warm_start(
            warm_start) else None

    def warm_start_repr(self) -> str:
        """``', warm_start=False'`` when off, else nothing."""
        return ', warm_start=False' if self.warm_start is None else ''

    def _apply(self, fn, recurse=True):
        if self.warm_start is not None:
            self.warm_start.clear()
        return super()._apply(fn, recurse)
