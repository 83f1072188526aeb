"""``nn.MultiheadAttention``'s state-dict keys for the explicit attention.

:class:`~mmseg_hosvd.models.ExplicitMultiheadAttention` holds its
projections as ``q_proj.weight``, ``q_proj.bias``, ... The hooks registered
here rename them on the way out and back:

============================  ==========================================
``nn.MultiheadAttention``     explicit module
============================  ==========================================
``in_proj_weight`` (3E, E)    ``q_proj.weight``, ``k_proj.weight``,
                              ``v_proj.weight`` (its thirds, in order)
``q_proj_weight`` (E, E)      ``q_proj.weight``
``k_proj_weight`` (E, kdim)   ``k_proj.weight``
``v_proj_weight`` (E, vdim)   ``v_proj.weight``
``in_proj_bias`` (3E)         ``q_proj.bias``, ``k_proj.bias``,
                              ``v_proj.bias``
``out_proj.weight/bias``      the same
============================  ==========================================

``in_proj_weight`` when ``kdim == vdim == embed_dim``, else the three
``*_proj_weight``, exactly as ``nn.MultiheadAttention`` keeps them. So a
checkpoint of either module loads into the other, through
``load_state_dict`` or MMEngine's ``load_checkpoint``. Keys without a
counterpart (a module swapped in for a projection may add its own) keep
their explicit names. With ``state_dict(keep_vars=True)`` the packed
entries are concatenations of the Parameters, not Parameters.
"""
from typing import Dict, List

import torch
from torch import Tensor, nn

PROJECTIONS = ('q', 'k', 'v')


def register_packed_state_dict(module: nn.Module) -> None:
    """Gives ``module`` ``nn.MultiheadAttention``'s state-dict keys.

    Args:
        module: An explicit attention module: ``q_proj``, ``k_proj``,
            ``v_proj`` and ``out_proj`` submodules and a
            ``_qkv_same_embed_dim`` flag.
    """
    module.register_state_dict_post_hook(_pack)
    module.register_load_state_dict_pre_hook(_unpack)


def _pack(module: nn.Module, state_dict: Dict[str, Tensor], prefix: str,
          local_metadata: dict) -> None:
    """Renames the projections' entries to ``nn.MultiheadAttention``'s."""
    own = {
        key[len(prefix):]: state_dict.pop(key)
        for key in [k for k in state_dict if k.startswith(prefix)]
    }
    packed = {}
    weights = [own.pop(f'{p}_proj.weight') for p in PROJECTIONS]
    if module._qkv_same_embed_dim:
        packed['in_proj_weight'] = torch.cat(weights)
    else:
        packed.update(
            {f'{p}_proj_weight': w
             for p, w in zip(PROJECTIONS, weights, strict=True)})
    if 'q_proj.bias' in own:
        packed['in_proj_bias'] = torch.cat(
            [own.pop(f'{p}_proj.bias') for p in PROJECTIONS])
    packed.update(own)
    state_dict.update({prefix + k: v for k, v in packed.items()})


def _unpack(module: nn.Module, state_dict: Dict[str, Tensor], prefix: str,
            local_metadata: dict, strict: bool, missing_keys: List[str],
            unexpected_keys: List[str], error_msgs: List[str]) -> None:
    """Renames ``nn.MultiheadAttention``'s entries to the projections'."""
    for name, suffix in (('in_proj_weight', 'weight'),
                         ('in_proj_bias', 'bias')):
        packed = state_dict.pop(prefix + name, None)
        if packed is None:
            continue
        if packed.shape[0] != 3 * module.embed_dim:
            error_msgs.append(
                f'{prefix}{name} must have 3 * embed_dim = '
                f'{3 * module.embed_dim} rows, got shape '
                f'{tuple(packed.shape)}')
            continue
        for p, part in zip(PROJECTIONS, packed.chunk(3), strict=True):
            state_dict[f'{prefix}{p}_proj.{suffix}'] = part
    for p in PROJECTIONS:
        weight = state_dict.pop(f'{prefix}{p}_proj_weight', None)
        if weight is not None:
            state_dict[f'{prefix}{p}_proj.weight'] = weight
