"""Point a built optimizer at Parameters that replaced some of its own."""
from typing import Dict, List, Sequence, Union

from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import nn
from torch.optim import Optimizer

Optimizers = Union[Optimizer, OptimWrapper, OptimWrapperDict]


def _optimizers(optim: Optimizers) -> List[Optimizer]:
    if isinstance(optim, OptimWrapperDict):
        return [wrapper.optimizer for wrapper in optim.values()]
    if isinstance(optim, OptimWrapper):
        return [optim.optimizer]
    if isinstance(optim, Optimizer):
        return [optim]
    raise TypeError('expected a torch Optimizer, an OptimWrapper or an '
                    f'OptimWrapperDict, got {type(optim).__name__}')


def rebind_parameters_(
        optim: Optimizers,
        replaced: Dict[nn.Parameter, Sequence[nn.Parameter]]) -> int:
    """Puts the new Parameters where the replaced ones were.

    In every parameter group, each replaced Parameter is replaced by its
    new ones, in order, at its place. They inherit the group's options (lr,
    weight decay, momentum...), on which the parameter schedulers act, and
    the groups keep a fixed order, so an optimizer state saved after the
    rebinding loads into an optimizer rebound the same way.

    Args:
        optim: The optimizer(s), modified in place.
        replaced: Each old Parameter and the new ones that hold its values.

    Returns:
        How many old entries were replaced.

    Raises:
        RuntimeError: If an optimizer already holds state (momentum...) of
            a replaced Parameter: it has stepped, and that state would be
            lost. Rebind before the first step.
    """
    count = 0
    for optimizer in _optimizers(optim):
        stepped = [p for p in replaced if p in optimizer.state]
        if stepped:
            raise RuntimeError(
                f'{type(optimizer).__name__} already holds state of '
                f'{len(stepped)} replaced Parameter(s) (shapes '
                f'{[tuple(p.shape) for p in stepped]}): rebind before the '
                'first optimizer step')
        for group in optimizer.param_groups:
            params = []
            for param in group['params']:
                if param in replaced:
                    params.extend(replaced[param])
                    count += 1
                else:
                    params.append(param)
            group['params'] = params
    return count
