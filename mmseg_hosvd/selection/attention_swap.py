"""Swap a model's ``nn.MultiheadAttention`` for the explicit attention."""
from typing import Dict, List

from torch import nn

from ..layers.explicit_attention import ExplicitMultiheadAttention
from .surgery import set_submodule

#: An old Parameter and the new ones that hold its values, in order.
ParameterMap = Dict[nn.Parameter, List[nn.Parameter]]


def find_attention(model: nn.Module) -> Dict[str, nn.MultiheadAttention]:
    """Every ``nn.MultiheadAttention`` of ``model``, by dotted name.

    A module reachable under several names is listed under each.

    Raises:
        TypeError: For a subclass of ``nn.MultiheadAttention``: its own
            behaviour would be lost in the swap.
    """
    found = {}
    for name, module in model.named_modules(remove_duplicate=False):
        if not isinstance(module, nn.MultiheadAttention):
            continue
        if type(module) is not nn.MultiheadAttention:
            raise TypeError(
                f'{name} is a {type(module).__name__}, a subclass of '
                'nn.MultiheadAttention: swapping it for '
                'ExplicitMultiheadAttention would drop its own behaviour')
        found[name] = module
    return found


def explicit_attention_(model: nn.Module) -> List[str]:
    """Swaps every ``nn.MultiheadAttention`` of ``model`` in place.

    Each becomes an :class:`ExplicitMultiheadAttention` built by
    :meth:`~ExplicitMultiheadAttention.from_attention`: the same outputs
    and gradients, the same state-dict keys, and four ``nn.Linear``
    projections that Linear-layer methods can fine-tune and compress. The
    packed q/k/v Parameters are replaced by new ones, which an existing
    optimizer does not hold (see :func:`replaced_parameters`).

    Args:
        model: The model, modified in place.

    Returns:
        The dotted names of the swapped modules, in ``named_modules``
        order (none when there is nothing to swap); a module shared under
        several names is swapped once and named under each.
    """
    found = find_attention(model)
    built = {}
    for name, attention in found.items():
        if id(attention) not in built:
            built[id(attention)] = ExplicitMultiheadAttention.from_attention(
                attention)
        set_submodule(model, name, built[id(attention)])
    return list(found)


def replaced_parameters(old: nn.MultiheadAttention,
                        new: ExplicitMultiheadAttention) -> ParameterMap:
    """Which Parameters of ``old`` the swap replaced, and by which.

    Args:
        old: The ``nn.MultiheadAttention`` before the swap.
        new: What :meth:`ExplicitMultiheadAttention.from_attention` built
            from it.

    Returns:
        ``in_proj_weight`` and ``in_proj_bias`` (where ``old`` has them),
        each mapped to the q, k and v projections' new Parameters.
        Reused Parameters (separate q/k/v weights, ``out_proj``) are not
        in it.
    """
    projections = (new.q_proj, new.k_proj, new.v_proj)
    replaced = {}
    if old.in_proj_weight is not None:
        replaced[old.in_proj_weight] = [p.weight for p in projections]
    if old.in_proj_bias is not None:
        replaced[old.in_proj_bias] = [p.bias for p in projections]
    return replaced
