"""Attention masks as ``nn.MultiheadAttention`` reads them, merged."""
from typing import Optional, Tuple

import torch
from torch import Tensor


def float_mask(mask: Tensor, name: str, dtype: torch.dtype) -> Tensor:
    """A boolean mask (True = not attended) as an additive float mask.

    Args:
        mask: A bool or floating-point mask; a float one is returned as is.
        name: Its argument name, for the error.
        dtype: Dtype of the float mask made from a bool one.

    Raises:
        TypeError: If ``mask`` is neither bool nor floating-point.
    """
    if mask.dtype == torch.bool:
        return torch.zeros_like(mask, dtype=dtype).masked_fill_(
            mask, float('-inf'))
    if not torch.is_floating_point(mask):
        raise TypeError(f'{name} must be a bool or floating-point tensor, '
                        f'got dtype {mask.dtype}')
    return mask


def merged_mask(attn_mask: Optional[Tensor],
                key_padding_mask: Optional[Tensor], heads: int,
                query_shape: Tuple[int, int], src: int,
                dtype: torch.dtype) -> Optional[Tensor]:
    """Both masks as one additive mask over (batch, heads, target, source).

    Args:
        attn_mask: None, (L, S) or (N * heads, L, S); bool or float.
        key_padding_mask: None or (N, S); bool or float.
        heads: Number of heads.
        query_shape: (N, L): batch size and target length.
        src: Source length S.
        dtype: Dtype of float masks made from bool ones.

    Returns:
        None without masks, else a float mask that broadcasts to
        (N, heads, L, S).

    Raises:
        ValueError: Naming a mask of the wrong shape.
    """
    batch, tgt = query_shape
    mask = None
    if attn_mask is not None:
        attn_mask = float_mask(attn_mask, 'attn_mask', dtype)
        shapes = ((tgt, src), (batch * heads, tgt, src))
        if tuple(attn_mask.shape) not in shapes:
            raise ValueError(f'attn_mask must have shape {shapes[0]} or '
                             f'{shapes[1]}, got {tuple(attn_mask.shape)}')
        mask = attn_mask.view(-1, heads if attn_mask.dim() == 3 else 1, tgt,
                              src)
    if key_padding_mask is not None:
        key_padding_mask = float_mask(key_padding_mask, 'key_padding_mask',
                                      dtype)
        if tuple(key_padding_mask.shape) != (batch, src):
            raise ValueError('key_padding_mask must have shape '
                             f'{(batch, src)}, got '
                             f'{tuple(key_padding_mask.shape)}')
        padding = key_padding_mask.view(batch, 1, 1, src)
        mask = padding if mask is None else mask + padding
    return mask
