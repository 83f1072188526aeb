"""Checks of the methods' options; each returns the value or names it."""
from collections.abc import Mapping
from typing import Any, Callable, NamedTuple, Optional

from ..ops import (
    check_eps,
    check_keep_batch,
    check_radius,
    check_solver,
    check_warm_start,
)
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


def per_layer(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A check that takes one value for every layer or a dict of values by
    layer name, each checked by ``check``."""

    def check_per_layer(value):
        if isinstance(value, Mapping):
            if not value:
                raise ValueError('a per-layer setting must name at least '
                                 'one layer, got an empty dict')
            checked = {}
            for name, item in value.items():
                try:
                    checked[name] = check(item)
                except ValueError as error:
                    raise ValueError(f'{name!r}: {error}') from None
            return checked
        return check(value)

    return check_per_layer


#: Keys of the ``allocate`` option.
ALLOCATION_KEYS = ('grid', 'budget_of', 'budget_mb', 'batches', 'criterion')
#: What an allocation minimises: 'layers', the sum of each layer's relative
#: weight-gradient error (every layer counts alike); 'whole', the squared
#: error of the whole gradient an SGD step follows, the sum over the layers
#: of ``||dW - dW_hat||^2`` (a layer counts by its gradient's size).
ALLOCATION_CRITERIA = ('layers', 'whole')


class PairedSetting(NamedTuple):
    """A second per-layer setting that an allocation may choose together
    with the method's :attr:`~.FinetuneMethod.per_layer` one (``hosvd``'s
    ``spatial_eps`` beside ``eps``).

    Attributes:
        option: Its option's name.
        grid_key: The ``allocate`` key listing its candidate values; None
            there (the default) allocates the first setting alone.
        check: Checks one of its values.
    """
    option: str
    grid_key: str
    check: Callable[[Any], Any]


def check_grid(key: str, values, check: Callable[[Any], Any],
               budget_of) -> list:
    """The sorted, checked values of an allocation grid, ``budget_of``
    (when not None) among them.

    Args:
        key: The grid's key in ``allocate``, for the message.
        values: The grid as given.
        check: Checks one value.
        budget_of: A value that joins the grid, or None.

    Returns:
        The values, checked, without repeats, sorted.

    Raises:
        ValueError: For an empty or non-list grid, naming ``key``, or a
            bad value.
    """
    if isinstance(values, (str, Mapping)) or not hasattr(
            values, '__iter__') or not list(values):
        raise ValueError(f'allocate.{key} must be a non-empty list of '
                         f'settings, got {values!r}')
    return sorted({check(v) for v in values} | (
        set() if budget_of is None else {budget_of}))


def allocation(check: Callable[[Any], Any], grid: tuple,
               paired: Optional[PairedSetting] = None
               ) -> Callable[[Any], Any]:
    """A check of the ``allocate`` option of a method whose per-layer
    setting ``check`` validates.

    The option is None (no allocation) or a dict: ``grid`` (the candidate
    values; ``grid`` here by default), exactly one of ``budget_of`` (the
    bytes that this value, set on every layer, stores) and ``budget_mb``
    (MB), ``batches`` (labelled batches measured, 1 by default) and
    ``criterion`` (one of :data:`ALLOCATION_CRITERIA`, 'layers' by
    default). ``budget_of`` joins the grid, so the allocation can always
    match it. With ``paired``, its ``grid_key`` lists the values of the
    second setting (None: not allocated); every pair of the two grids is
    a candidate, and ``budget_of`` joins that grid too.
    """
    keys = ALLOCATION_KEYS + ((paired.grid_key, ) if paired else ())

    def check_allocation(value):
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise ValueError(f'allocate must be None or a dict with keys '
                             f'{keys}, got {value!r}')
        unknown = sorted(set(value) - set(keys))
        if unknown:
            raise ValueError(f'allocate has unknown keys {unknown}; it '
                             f'accepts {keys}')
        if (value.get('budget_of') is None) == (value.get('budget_mb') is
                                                 None):
            raise ValueError('allocate needs exactly one of budget_of (a '
                             'setting whose bytes are the budget) and '
                             f'budget_mb, got {dict(value)!r}')
        budget_of = value.get('budget_of')
        if budget_of is not None:
            budget_of = check(budget_of)
        criterion = value.get('criterion', ALLOCATION_CRITERIA[0])
        if criterion not in ALLOCATION_CRITERIA:
            raise ValueError(f'allocate.criterion must be one of '
                             f'{ALLOCATION_CRITERIA}, got {criterion!r}')
        checked = dict(
            grid=check_grid('grid', value.get('grid', grid), check,
                            budget_of),
            budget_of=budget_of,
            budget_mb=check_budget_mb(value.get('budget_mb')),
            batches=check_int_at_least('allocate.batches',
                                       value.get('batches', 1), 1),
            criterion=criterion)
        if paired is not None:
            second = value.get(paired.grid_key)
            checked[paired.grid_key] = None if second is None else \
                check_grid(paired.grid_key, second, paired.check, budget_of)
        return checked

    return check_allocation


#: The options every decomposing method shares.
EPS = Option(0.8, check_eps)
SOLVER = Option('auto', check_solver)
#: Whether the Ritz solver starts from the previous step's vectors.
WARM_START = Option(True, check_warm_start)
#: Whether HOSVD keeps the batch mode whole (only the others truncated).
KEEP_BATCH = Option(False, check_keep_batch)


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
