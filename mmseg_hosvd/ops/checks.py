"""Argument checks and errors shared by the decompositions and convolutions."""
import torch

#: The policy name that picks a solver per unfolding
#: (:func:`~.solvers.auto_policy`).
AUTO = 'auto'
#: The accepted solver names: the policy, then the solvers of
#: :data:`~.solvers.SOLVER_TABLE` (which checks it on import).
SOLVERS = (AUTO, 'eigh', 'ritz')


def check_solver(solver: str) -> str:
    """Validates a HOSVD-eps solver name (one of :data:`SOLVERS`).

    Args:
        solver: 'auto', 'eigh' or 'ritz'.

    Returns:
        ``solver``.

    Raises:
        ValueError: For any other value, which the message names.
    """
    if solver not in SOLVERS:
        raise ValueError(f'solver must be one of {SOLVERS}, got {solver!r}')
    return solver


class SolverUnsuitable(Exception):
    """A solver cannot find the leading vectors of this matrix.

    Raised by a solver of :data:`~mmseg_hosvd.ops.solvers.SOLVER_TABLE`
    (never for a bad argument); the caller then runs the fallback solver
    that the table declares.

    Args:
        reason: Why the solver gave up, as text.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def check_activation(x: torch.Tensor, name: str = 'input') -> None:
    """Checks that a convolution input is a 4-D floating tensor.

    Args:
        x: The tensor.
        name: How the error message calls it.

    Raises:
        ValueError: If ``x`` is not 4-D or not floating point.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x)
        raise ValueError(f'{name} must be a 4-D (B, C, H, W) tensor, got '
                         f'shape {shape}')
    if not x.is_floating_point():
        raise ValueError(f'{name} must be floating point, got {x.dtype}')


def check_finite(x: torch.Tensor, name: str = 'activation') -> None:
    """Raises a ValueError if ``x`` holds NaN or Inf.

    Args:
        x: Tensor to check (its sum of squares is enough).
        name: How the error message calls it.
    """
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f'the {name} to compress contains NaN or Inf '
                         '(or values whose square overflows); the training '
                         'has diverged before this layer')


def autocast_off(tensor: torch.Tensor):
    """Context that disables autocast on ``tensor``'s device type.

    Decompositions and compressed-space gradients run in float32 or float64
    whatever the training dtype; under autocast, matmuls would silently drop
    to bfloat16 or float16.
    """
    return torch.autocast(tensor.device.type, enabled=False)


def check_int_at_least(name: str, value: int, low: int) -> int:
    """Validates an int argument (a bool is refused) of at least ``low``.

    Args:
        name: How the error message calls it.
        value: The value.
        low: The smallest value allowed.

    Returns:
        ``value``.

    Raises:
        ValueError: If ``value`` is not an int >= ``low``; the message
            names it.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f'{name} must be an int >= {low}, got {value!r}')
    return value


def check_eps(eps: float, name: str = 'eps') -> float:
    """Validates an explained-variance threshold.

    Args:
        eps: Threshold that must lie in (0, 1].
        name: The option's name in the error message.

    Returns:
        ``eps`` as a float.

    Raises:
        ValueError: If ``eps`` is not a number in (0, 1].
    """
    if isinstance(eps, bool) or not isinstance(eps, (int, float)):
        raise ValueError(f'{name} must be a number in (0, 1], got {eps!r}')
    if not 0.0 < float(eps) <= 1.0:
        raise ValueError(f'{name} must be in (0, 1], got {eps!r}')
    return float(eps)
