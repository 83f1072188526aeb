"""Choose the fixed ranks of subspace convolutions from one batch."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ..ops import (
    ModeUnfolding,
    allocate_ranks,
    gram_eigenpairs,
    ranks_from_eps,
    tucker_numel,
)
from ..ops.stats import ANALYTICAL_BYTES_PER_ELEMENT
from .model_trace import trace_model


def input_spectra(model: nn.Module, names: Sequence[str],
                  inputs: torch.Tensor) -> Dict[str, Tuple[tuple, list]]:
    """Shape and per-mode energies of each named convolution's input.

    One traced forward of ``inputs`` (under ``no_grad``, in the model's
    current mode) captures the inputs.

    Args:
        model: The segmentor.
        names: Convolution names.
        inputs: A preprocessed image batch.

    Returns:
        ``{name: (shape, [energy per mode])}``.
    """
    captured = trace_model(model, inputs, capture=names,
                           eval_mode=False).inputs
    spectra = {}
    for name, x in captured.items():
        energies = [
            gram_eigenpairs(ModeUnfolding(x, mode).gram())[0]
            for mode in range(x.ndim)
        ]
        spectra[name] = (tuple(x.shape), energies)
    return spectra


def _group_eps(eps: Union[float, Dict[str, float]],
               groups: List[List[str]], name: str) -> float:
    """The one eps of ``name``'s shared-input group (its members store
    one tensor at one set of ranks)."""
    if not isinstance(eps, dict):
        return eps
    group = next((g for g in groups if name in g), [name])
    values = {eps[member] for member in group}
    if len(values) > 1:
        raise ValueError(
            f'layers {group} read one input and get fixed ranks together: '
            f'give them one eps, got {[eps[m] for m in group]}')
    return values.pop()


def choose_ranks(spectra: Dict[str, Tuple[tuple, list]],
                 groups: List[List[str]],
                 eps: Union[float, Dict[str, float]] = 0.8,
                 budget_mb: Optional[float] = None
                 ) -> Tuple[Dict[str, Tuple[int, ...]], float]:
    """Ranks per convolution from eps or from a budget for all of them.

    Convolutions of one group read the same tensor and store it once, so
    the budget counts each group once and its members get the same ranks.

    Args:
        spectra: From :func:`input_spectra`.
        groups: Groups of convolution names that share their input.
        eps: Explained-variance threshold, one or a dict by name (the
            members of a group must have one), when there is no budget.
        budget_mb: Memory budget (MB) for all layers together.

    Returns:
        ``(ranks by name, analytical MB that these ranks store)``.

    Raises:
        ValueError: For members of a group given different eps.
    """
    leader = {}
    for group in groups:
        for name in group:
            leader[name] = group[0]
    owners = [n for n in spectra if leader.get(n, n) == n]
    if budget_mb is None:
        chosen = {n: ranks_from_eps(spectra[n][1], _group_eps(eps, groups, n))
                  for n in owners}
    else:
        chosen = allocate_ranks({n: spectra[n][1]
                                 for n in owners},
                                {n: spectra[n][0]
                                 for n in owners}, budget_mb)
    used = sum(tucker_numel(spectra[n][0], chosen[n]) for n in owners)
    ranks = {n: chosen[leader.get(n, n)] for n in spectra}
    return ranks, used * ANALYTICAL_BYTES_PER_ELEMENT / 2**20
