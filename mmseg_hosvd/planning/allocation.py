"""One setting per layer, the least summed gradient error under a byte
budget: a multiple-choice knapsack, solved exactly.

Each layer offers its measured candidates (:class:`~.gradient_error.
CandidateError`: stored bytes and weight-gradient error); exactly one is
chosen per layer so that the stored bytes of all layers fit the budget and
the (weighted) sum of errors is least. The solver keeps, layer after
layer, only the partial choices that no other beats in both bytes and
error (a Pareto front), which is exact and small for the fronts that
compression gives. Layers that read one tensor (a shared-input group)
take one setting together and count its bytes once, as training stores
it.
"""
import dataclasses
from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from .gradient_error import CandidateError


class Allocation(NamedTuple):
    """The chosen candidate of each layer.

    Attributes:
        choices: Layer name to its chosen candidate, in layer order.
        stored_bytes: Their summed stored bytes, a shared input's once.
        error: Their summed (weighted) gradient error.
    """
    choices: Dict[str, CandidateError]
    stored_bytes: float
    error: float


class _Option(NamedTuple):
    """One setting of a unit (a layer, or a group reading one input)."""
    stored_bytes: float
    error: float
    members: Tuple[CandidateError, ...]


def _by_layer(errors: Sequence[CandidateError]
              ) -> Dict[str, Dict[str, CandidateError]]:
    layers: Dict[str, Dict[str, CandidateError]] = {}
    for candidate in errors:
        layers.setdefault(candidate.layer, {})[candidate.tag] = candidate
    return layers


def _units(layers: Dict[str, Dict[str, CandidateError]],
           groups: Sequence[Sequence[str]],
           weights: Mapping[str, float]) -> List[List[_Option]]:
    """The options of each unit: a layer alone, or a shared-input group
    whose layers take one setting and store its input once (the most any
    of them stores)."""
    grouped = {name: tuple(group) for group in groups for name in group}
    units, seen = [], set()
    for name in layers:
        group = grouped.get(name, (name, ))
        if group in seen:
            continue
        seen.add(group)
        tags = [t for t in layers[name]
                if all(t in layers[member] for member in group)]
        units.append([
            _Option(max(layers[m][t].stored_bytes for m in group),
                    sum(weights.get(m, 1.0) * layers[m][t].error
                        for m in group),
                    tuple(layers[m][t] for m in group)) for t in tags
        ])
    return units


def _front(states):
    """The states no other beats in both bytes and error, by bytes."""
    kept = []
    for state in sorted(states, key=lambda s: (s[0], s[1])):
        if not kept or state[1] < kept[-1][1]:
            kept.append(state)
    return kept


def _check_groups(layers, groups) -> None:
    seen = set()
    for group in groups:
        for name in group:
            if name not in layers:
                raise ValueError(f'shared-input group {list(group)} names '
                                 f'{name!r}, which has no candidates')
            if name in seen:
                raise ValueError(f'layer {name!r} is in two shared-input '
                                 'groups')
            seen.add(name)
        common = set.intersection(*(set(layers[n]) for n in group))
        if not common:
            raise ValueError(f'the layers of shared-input group '
                             f'{list(group)} have no candidate in common')


def allocate(errors: Sequence[CandidateError], budget_bytes: float,
             weights: Optional[Mapping[str, float]] = None,
             groups: Sequence[Sequence[str]] = ()) -> Allocation:
    """The least-error choice of one candidate per layer within a budget.

    Args:
        errors: Every candidate of every layer
            (:func:`~.gradient_error.gradient_errors`).
        budget_bytes: The most bytes all layers may store together.
        weights: A weight per layer for its error (1 where not given).
        groups: Layers that read one tensor and store it once when they
            share a setting (DeepLabV3's ASPP branches): each group gets
            one setting, its bytes counted once.

    Returns:
        The allocation; ties go to fewer bytes.

    Raises:
        ValueError: For a budget below the smallest total (naming it), a
            negative budget, no candidates, or groups naming unknown
            layers, a layer twice, or no common candidate.
    """
    if budget_bytes < 0:
        raise ValueError(f'budget_bytes must be >= 0, got {budget_bytes!r}')
    layers = _by_layer(errors)
    if not layers:
        raise ValueError('no candidates to allocate')
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(layers))
    if unknown:
        raise ValueError(f'weights name layers without candidates: '
                         f'{unknown}')
    _check_groups(layers, groups)
    units = _units(layers, groups, weights)
    least = sum(min(o.stored_bytes for o in unit) for unit in units)
    if least > budget_bytes:
        raise ValueError(
            f'budget of {budget_bytes:.0f} bytes is below the smallest '
            f'total the candidates store, {least:.0f} bytes')
    # a state: (bytes, error, chosen candidates so far)
    states = [(0.0, 0.0, ())]
    for unit in units:
        states = _front((used + o.stored_bytes, error + o.error,
                         chosen + o.members)
                        for used, error, chosen in states for o in unit
                        if used + o.stored_bytes <= budget_bytes)
    used, error, chosen = min(states, key=lambda s: (s[1], s[0]))
    order = {name: i for i, name in enumerate(layers)}
    chosen = sorted(chosen, key=lambda c: order[c.layer])
    return Allocation({c.layer: c for c in chosen}, used, error)


def criterion_errors(errors: Sequence[CandidateError],
                     criterion: str) -> List[CandidateError]:
    """The errors :func:`allocate` sums for an allocation ``criterion``.

    Args:
        errors: Measured candidates (relative errors, gradient norms).
        criterion: 'layers' (each layer's relative error, as measured) or
            'whole' (each layer's ``||dW - dW_hat||^2``, whose sum is the
            squared error of the whole gradient).

    Returns:
        The candidates with ``error`` as the criterion counts it.

    Raises:
        ValueError: For another criterion, or 'whole' on a candidate
            without its gradient norm.
    """
    if criterion == 'layers':
        return list(errors)
    if criterion != 'whole':
        raise ValueError(f"criterion must be 'layers' or 'whole', got "
                         f'{criterion!r}')
    unmeasured = sorted({c.layer for c in errors if c.gradient_norm is None})
    if unmeasured:
        raise ValueError(f"criterion 'whole' needs each layer's gradient "
                         f'norm; not measured for {unmeasured}')
    return [dataclasses.replace(c, error=(c.error * c.gradient_norm)**2)
            for c in errors]


def uniform_bytes(errors: Sequence[CandidateError], tag: str,
                  groups: Sequence[Sequence[str]] = ()) -> float:
    """The bytes stored when every layer takes the candidate ``tag``, a
    shared input's once.

    Raises:
        ValueError: When a layer has no candidate ``tag``.
    """
    layers = _by_layer(errors)
    missing = [name for name, tags in layers.items() if tag not in tags]
    if missing:
        raise ValueError(f'no candidate {tag!r} for layers {missing}')
    grouped = {name: tuple(group) for group in groups for name in group}
    units = {grouped.get(name, (name, )) for name in layers}
    return sum(max(layers[m][tag].stored_bytes for m in unit)
               for unit in units)
