"""Multi-head attention whose projections are four plain ``nn.Linear``.

``nn.MultiheadAttention`` keeps its query/key/value projections as one
packed Parameter and applies them functionally, so no Linear-layer swap can
reach them. :class:`ExplicitMultiheadAttention` computes the same attention
with ``q_proj``, ``k_proj``, ``v_proj`` and ``out_proj`` submodules, and
keeps ``nn.MultiheadAttention``'s state-dict keys (see
:mod:`~mmseg_hosvd.layers.attention_state_dict`).
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor, nn

from .attention_masks import merged_mask
from .attention_state_dict import register_packed_state_dict


@MODELS.register_module()
class ExplicitMultiheadAttention(nn.Module):
    """``nn.MultiheadAttention`` with explicit ``nn.Linear`` projections.

    Same arguments, forward signature and results (up to floating-point
    rounding) as ``nn.MultiheadAttention`` (batch_first or not, unbatched
    inputs, boolean or float ``key_padding_mask`` and 2D/3D ``attn_mask``,
    ``need_weights``, ``average_attn_weights``, ``is_causal``, ``kdim`` and
    ``vdim``). With ``dropout > 0`` in training mode the attention weights
    are dropped as ``nn.MultiheadAttention`` drops them, so the two agree in
    distribution, not sample by sample. Its ``state_dict`` has
    ``nn.MultiheadAttention``'s keys, and it loads theirs. A new module is
    initialised like ``nn.Linear``; :meth:`from_attention` converts one.

    Args:
        embed_dim: Model dimension (query and output).
        num_heads: Attention heads; must divide ``embed_dim``.
        dropout: Dropout probability on the attention weights.
        bias: Whether the four projections have a bias.
        add_bias_kv: Not supported (must be False).
        add_zero_attn: Not supported (must be False).
        kdim: Key dimension (``embed_dim`` when None).
        vdim: Value dimension (``embed_dim`` when None).
        batch_first: Inputs and outputs are (batch, sequence, feature).
        device: Device of the parameters.
        dtype: Dtype of the parameters.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.,
                 bias: bool = True, add_bias_kv: bool = False,
                 add_zero_attn: bool = False, kdim: Optional[int] = None,
                 vdim: Optional[int] = None, batch_first: bool = False,
                 device=None, dtype=None):
        super().__init__()
        for option, value in (('add_bias_kv', add_bias_kv),
                              ('add_zero_attn', add_zero_attn)):
            if value:
                raise ValueError(f'{option}={value!r} is not supported by '
                                 'ExplicitMultiheadAttention')
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise ValueError('num_heads must be positive and divide '
                             f'embed_dim, got embed_dim={embed_dim}, '
                             f'num_heads={num_heads}')
        if not 0. <= dropout <= 1.:
            raise ValueError(f'dropout must be in [0, 1], got {dropout!r}')
        self.embed_dim = embed_dim
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == self.vdim == embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.bias_k = self.bias_v = None
        self.add_zero_attn = False
        kwargs = dict(bias=bias, device=device, dtype=dtype)
        self.q_proj = nn.Linear(embed_dim, embed_dim, **kwargs)
        self.k_proj = nn.Linear(self.kdim, embed_dim, **kwargs)
        self.v_proj = nn.Linear(self.vdim, embed_dim, **kwargs)
        self.out_proj = nn.Linear(embed_dim, embed_dim, **kwargs)
        register_packed_state_dict(self)

    @classmethod
    def from_attention(cls, attention: nn.MultiheadAttention
                       ) -> 'ExplicitMultiheadAttention':
        """Builds the explicit twin of an ``nn.MultiheadAttention``.

        Separate q/k/v weights (``kdim``/``vdim`` differ from
        ``embed_dim``) and ``out_proj`` are reused as they are; the packed
        ``in_proj_weight`` and ``in_proj_bias`` are split into new
        Parameters holding copies, with the same ``requires_grad``.

        Args:
            attention: The module to convert.

        Returns:
            The new module, in ``attention``'s training mode.

        Raises:
            TypeError: If ``attention`` is not an ``nn.MultiheadAttention``.
            ValueError: If it uses ``add_bias_kv`` or ``add_zero_attn``.
        """
        if not isinstance(attention, nn.MultiheadAttention):
            raise TypeError('from_attention expects an nn.MultiheadAttention'
                            f', got {type(attention).__name__}')
        new = cls(attention.embed_dim, attention.num_heads,
                  dropout=attention.dropout,
                  bias=attention.in_proj_bias is not None,
                  add_bias_kv=attention.bias_k is not None,
                  add_zero_attn=attention.add_zero_attn,
                  kdim=attention.kdim, vdim=attention.vdim,
                  batch_first=attention.batch_first, device='meta')
        projections = (new.q_proj, new.k_proj, new.v_proj)
        if attention._qkv_same_embed_dim:
            weights = _split(attention.in_proj_weight)
        else:
            weights = (attention.q_proj_weight, attention.k_proj_weight,
                       attention.v_proj_weight)
        biases = (_split(attention.in_proj_bias)
                  if attention.in_proj_bias is not None else (None, ) * 3)
        for projection, weight, bias in zip(projections, weights, biases,
                                           strict=True):
            projection.weight = weight
            projection.bias = bias
        new.out_proj = attention.out_proj
        return new.train(attention.training)

    #: torch's transformer layers call it on their inference fast path,
    #: which reads :attr:`in_proj_weight` and :attr:`in_proj_bias` too
    merge_masks = nn.MultiheadAttention.merge_masks

    @property
    def in_proj_weight(self) -> Optional[Tensor]:
        """The packed q/k/v weight (None when kdim or vdim differ)."""
        if not self._qkv_same_embed_dim:
            return None
        return torch.cat(
            [self.q_proj.weight, self.k_proj.weight, self.v_proj.weight])

    @property
    def in_proj_bias(self) -> Optional[Tensor]:
        """The packed q/k/v bias (None without bias)."""
        if self.q_proj.bias is None:
            return None
        return torch.cat([self.q_proj.bias, self.k_proj.bias,
                          self.v_proj.bias])

    def extra_repr(self) -> str:
        return (f'embed_dim={self.embed_dim}, num_heads={self.num_heads}, '
                f'kdim={self.kdim}, vdim={self.vdim}, '
                f'dropout={self.dropout}, batch_first={self.batch_first}')

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Optional[Tensor] = None,
                need_weights: bool = True,
                attn_mask: Optional[Tensor] = None,
                average_attn_weights: bool = True,
                is_causal: bool = False
                ) -> Tuple[Tensor, Optional[Tensor]]:
        """Attention of ``query`` over ``key``/``value``.

        Arguments, shapes and outputs as ``nn.MultiheadAttention.forward``.

        Returns:
            The output and, with ``need_weights``, the attention weights
            (averaged over heads with ``average_attn_weights``), else None.
        """
        batched = self._check_inputs(query, key, value)
        inputs = (query, key, value)
        if not batched:
            inputs = [x.unsqueeze(0) for x in inputs]
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            inputs = [x.transpose(0, 1) for x in inputs]
        query, key, value = inputs
        if is_causal and attn_mask is None:
            raise RuntimeError('is_causal=True needs attn_mask (the causal '
                               'mask), as in nn.MultiheadAttention')
        causal = is_causal and key_padding_mask is None and not need_weights
        mask = None if causal else merged_mask(
            attn_mask, key_padding_mask, self.num_heads, query.shape[:2],
            key.shape[1], query.dtype)
        q = self._heads(self.q_proj(query))
        k = self._heads(self.k_proj(key))
        v = self._heads(self.v_proj(value))
        dropout = self.dropout if self.training else 0.
        weights = None
        if need_weights:
            scores = (q * math.sqrt(1. / self.head_dim)) @ k.transpose(-2, -1)
            if mask is not None:
                scores = scores + mask
            weights = scores.softmax(dim=-1)
            if dropout > 0:
                weights = F.dropout(weights, dropout)
            out = weights @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, mask, dropout,
                                                 causal)
        out = self.out_proj(out.transpose(1, 2).flatten(2))
        if weights is not None and average_attn_weights:
            weights = weights.mean(dim=1)
        if not batched:
            out = out.squeeze(0)
            weights = None if weights is None else weights.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        return out, weights

    def _heads(self, x: Tensor) -> Tensor:
        """(N, L, E) -> (N, heads, L, head_dim)."""
        return x.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)

    def _check_inputs(self, query: Tensor, key: Tensor, value: Tensor) -> bool:
        """Checks dimensions and feature sizes; True for batched inputs."""
        if query.dim() not in (2, 3) or not key.dim() == value.dim() == (
                query.dim()):
            raise ValueError('query, key and value must all be 2-D '
                             '(unbatched) or all 3-D, got shapes '
                             f'{tuple(query.shape)}, {tuple(key.shape)}, '
                             f'{tuple(value.shape)}')
        for name, x, size in (('query', query, self.embed_dim),
                              ('key', key, self.kdim),
                              ('value', value, self.vdim)):
            if x.shape[-1] != size:
                raise ValueError(f'{name} must have {size} features, got '
                                 f'shape {tuple(x.shape)}')
        if key.shape[:-1] != value.shape[:-1]:
            raise ValueError('key and value must have the same sequence and '
                             f'batch sizes, got shapes {tuple(key.shape)} and '
                             f'{tuple(value.shape)}')
        return query.dim() == 3


def _split(packed: Tensor) -> Tuple[nn.Parameter, ...]:
    """Three new Parameters holding copies of the thirds of ``packed``."""
    return tuple(
        nn.Parameter(part.detach().clone(),
                     requires_grad=packed.requires_grad)
        for part in packed.chunk(3))
