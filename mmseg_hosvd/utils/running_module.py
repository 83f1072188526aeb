"""Which module of a model is running, for attributing what it allocates."""
from typing import List

from torch import nn

#: Name given to what runs outside every module of the model.
OUTSIDE = '<outside the model>'


class RunningModule:
    """Context manager that tracks the innermost module running in a model.

    Forward pre-hooks and forward hooks on every module keep a stack; the
    innermost module is the one whose own code (or functional calls) is
    running, so a matrix product inside an attention module is that
    module's, not its last child's.

    Args:
        model: The model whose modules are tracked.

    Example:
        >>> with RunningModule(model) as running:
        ...     model(x)  # running.kind() inside a hook says who runs
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self._stack: List[nn.Module] = []
        self._handles = []

    def kind(self) -> str:
        """Class name of the innermost running module, or :data:`OUTSIDE`."""
        return type(self._stack[-1]).__name__ if self._stack else OUTSIDE

    def _enter(self, module, args):
        self._stack.append(module)

    def _leave(self, module, args, output):
        # a pre-hook that raised before ours (and was caught) pushed nothing
        if self._stack and self._stack[-1] is module:
            self._stack.pop()

    def __enter__(self) -> 'RunningModule':
        for module in self.model.modules():
            self._handles.append(module.register_forward_pre_hook(
                self._enter, prepend=True))
            self._handles.append(module.register_forward_hook(
                self._leave, always_call=True))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._stack.clear()
