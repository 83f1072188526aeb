"""Checks of the methods' options; each returns the value or names it."""
from collections.abc import Mapping
from typing import Any, Callable, NamedTuple

from ..ops import check_eps, check_radius, check_solver, check_warm_start
from ..ops.checks import check_int_at_least


class Option(NamedTuple):
    """One option of a fine-tuning method.

    Attributes:
        default: Its value when the config does not set it.
        check: Returns the checked value or raises ValueError naming it.
    """
    default: Any
    check: Callable[[Any], Any]


def check_radius_option(radius):
    """None (the preset's radii), one radius, or a radius per layer name."""
    if isinstance(radius, dict):
        for value in radius.values():
            check_radius(value)
    elif radius is not None:
        check_radius(radius)
    return radius


def check_budget_mb(budget_mb):
    """None, or a memory budget in MB > 0."""
    if budget_mb is not None and (isinstance(budget_mb, bool)
                                  or not isinstance(budget_mb, (int, float))
                                  or budget_mb <= 0):
        raise ValueError(f'budget_mb must be a number > 0, got {budget_mb!r}')
    return budget_mb


def check_rank_batches(rank_batches):
    """An int >= 1."""
    return check_int_at_least('rank_batches', rank_batches, 1)


#: The options every decomposing method shares.
EPS = Option(0.8, check_eps)
SOLVER = Option('auto', check_solver)
#: Whether the Ritz solver starts from the previous step's vectors.
WARM_START = Option(True, check_warm_start)


def plain_value(value):
    """``value`` with every mapping, list and tuple rebuilt as a plain
    ``dict``, ``list`` or ``tuple``.

    Options given in a config arrive as MMEngine ``ConfigDict`` objects; the
    fine-tuning plan that keeps them is pickled into each checkpoint, whose
    loading accepts only plain Python containers.
    """
    if isinstance(value, Mapping):
        return {key: plain_value(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return tuple(plain_value(item) for item in value)
    if isinstance(value, list):
        return [plain_value(item) for item in value]
    return value
