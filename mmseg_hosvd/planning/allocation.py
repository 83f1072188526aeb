"""One setting per layer, the least summed gradient error under a byte
budget: a multiple-choice knapsack, solved exactly.

Each layer offers its measured candidates (:class:`~.gradient_error.
CandidateError`: stored bytes and weight-gradient error); exactly one is
chosen per layer so that the stored bytes of all layers fit the budget and
the (weighted) sum of errors is least. The solver keeps, layer after
layer, only the partial choices that no other beats in both bytes and
error (a Pareto front), which is exact and small for the fronts that
compression gives.
"""
from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence

from .gradient_error import CandidateError


class Allocation(NamedTuple):
    """The chosen candidate of each layer.

    Attributes:
        choices: Layer name to its chosen candidate, in layer order.
        stored_bytes: Their summed stored bytes.
        error: Their summed (weighted) gradient error.
    """
    choices: Dict[str, CandidateError]
    stored_bytes: float
    error: float


def _by_layer(errors: Sequence[CandidateError]
              ) -> Dict[str, List[CandidateError]]:
    layers: Dict[str, List[CandidateError]] = {}
    for candidate in errors:
        layers.setdefault(candidate.layer, []).append(candidate)
    return layers


def _front(states):
    """The states no other beats in both bytes and error, by bytes."""
    kept = []
    for state in sorted(states, key=lambda s: (s[0], s[1])):
        if not kept or state[1] < kept[-1][1]:
            kept.append(state)
    return kept


def allocate(errors: Sequence[CandidateError], budget_bytes: float,
             weights: Optional[Mapping[str, float]] = None) -> Allocation:
    """The least-error choice of one candidate per layer within a budget.

    Args:
        errors: Every candidate of every layer
            (:func:`~.gradient_error.gradient_errors`).
        budget_bytes: The most bytes all layers may store together.
        weights: A weight per layer for its error (1 where not given).

    Returns:
        The allocation; ties go to fewer bytes.

    Raises:
        ValueError: For a budget below the smallest total (naming it), a
            negative budget, or no candidates.
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
    least = sum(min(c.stored_bytes for c in cs) for cs in layers.values())
    if least > budget_bytes:
        raise ValueError(
            f'budget of {budget_bytes:.0f} bytes is below the smallest '
            f'total the candidates store, {least:.0f} bytes')
    # a state: (bytes, error, chosen candidates so far)
    states = [(0.0, 0.0, ())]
    for name, candidates in layers.items():
        weight = weights.get(name, 1.0)
        states = _front(
            (used + c.stored_bytes, error + weight * c.error, chosen + (c, ))
            for used, error, chosen in states for c in candidates
            if used + c.stored_bytes <= budget_bytes)
    used, error, chosen = min(states, key=lambda s: (s[1], s[0]))
    return Allocation({c.layer: c for c in chosen}, used, error)
