"""Choose fixed Tucker ranks: from eps, or from a memory budget."""
from typing import Dict, List, Sequence, Tuple

import torch

from .spectrum import rank_from_energy
from .stats import ANALYTICAL_BYTES_PER_ELEMENT


def tucker_numel(shape: Sequence[int], ranks: Sequence[int]) -> int:
    """Stored elements of a Tucker form: core plus factors."""
    core = 1
    for k in ranks:
        core *= k
    return core + sum(i * k for i, k in zip(shape, ranks, strict=True))


def ranks_from_eps(energies: Sequence[torch.Tensor],
                   eps: float) -> Tuple[int, ...]:
    """Per-mode ranks reaching ``eps`` (at least 1)."""
    return tuple(max(1, rank_from_energy(e, eps)) for e in energies)


def _explained(energy: torch.Tensor) -> List[float]:
    energy = energy.detach().double().clamp_min(0)
    total = float(energy.sum())
    if total <= 0:
        return [1.0] * energy.numel()
    return (torch.cumsum(energy, 0) / total).tolist()


def allocate_ranks(energies: Dict[str, Sequence[torch.Tensor]],
                   shapes: Dict[str, Sequence[int]],
                   budget_mb: float) -> Dict[str, Tuple[int, ...]]:
    """Ranks for every layer within a total memory budget.

    Starts from rank 1 in every mode of every layer and repeatedly adds the
    rank that gains the most explained variance per stored byte, where a
    layer's explained variance is the product over modes of the fraction of
    energy its factors keep, and the objective is the sum over layers. It
    stops when nothing more fits or nothing gains.

    Args:
        energies: Per layer, the energies (squared singular values,
            descending) of each mode's unfolding.
        shapes: Per layer, the input shape.
        budget_mb: Budget for all layers together, in MB (2**20 bytes) of
            4-byte elements.

    Returns:
        Ranks per layer.

    Raises:
        ValueError: If the budget cannot hold rank 1 everywhere; the message
            gives that minimum.
    """
    budget = budget_mb * 2**20 / ANALYTICAL_BYTES_PER_ELEMENT
    ranks = {name: [1] * len(shape) for name, shape in shapes.items()}
    used = sum(tucker_numel(shapes[n], r) for n, r in ranks.items())
    if used > budget:
        minimum = used * ANALYTICAL_BYTES_PER_ELEMENT / 2**20
        raise ValueError(f'budget_mb={budget_mb} is below the minimum of '
                         f'{minimum:.4f} MB (rank 1 in every mode of every '
                         'layer)')
    explained = {n: [_explained(e) for e in es] for n, es in energies.items()}

    def quality(name, r):
        value = 1.0
        for mode, k in enumerate(r):
            value *= explained[name][mode][k - 1]
        return value

    while True:
        best, best_gain = None, 0.0
        for name, r in ranks.items():
            base = quality(name, r)
            size = tucker_numel(shapes[name], r)
            for mode in range(len(r)):
                if r[mode] >= shapes[name][mode]:
                    continue
                trial = list(r)
                trial[mode] += 1
                extra = tucker_numel(shapes[name], trial) - size
                if used + extra > budget:
                    continue
                gain = (quality(name, trial) - base) / extra
                if gain > best_gain:
                    best, best_gain = (name, mode, extra), gain
        if best is None:
            break
        name, mode, extra = best
        ranks[name][mode] += 1
        used += extra
    return {n: tuple(r) for n, r in ranks.items()}
