"""Linear layer whose input is stored as a HOSVD (Tucker) decomposition.

The input (B, C), (B, N, C) or (B, H, W, C) is decomposed as a tensor of as
many modes, the channel mode last. The output and the input gradient are
exact. The weight gradient ``G^T X`` is formed in the compressed space
(see docs/design.md): the output gradient is projected on the factors of
every mode but the channel mode, contracted with the core, and the channel
factor maps the result back to the input channels; the input is never
rebuilt.
"""
from typing import Optional, Sequence, Tuple

import torch

from .compressed_linear_function import LinearRule, decomposed_linear
from .decomposition import hosvd
from .decomposition_settings import DecompositionSettings, resolve_settings
from .warm_start import WarmStart
from .shared_input import SharedDecomposition
from .stats import StoredActivation
from .subspace import subspace_hosvd
from .tensor_ops import multi_mode_dot


def hosvd_linear_weight_grad(core: torch.Tensor,
                             factors: Sequence[torch.Tensor],
                             grad_output: torch.Tensor) -> torch.Tensor:
    """Weight gradient of a Linear layer from the Tucker form of its input.

    Args:
        core: Core (K0, ..., Kc) of the input, the channel mode last.
        factors: One factor (I_j, K_j) per mode, the channel factor
            (C, Kc) last.
        grad_output: Gradient of the output, the input's shape with C'
            channels.

    Returns:
        The (C', C) weight gradient, in the dtype of ``core``.
    """
    *leading, channel = factors
    modes = list(range(len(leading)))
    if core.numel() == 0:
        return core.new_zeros(grad_output.shape[-1], channel.shape[0])
    projected = multi_mode_dot(grad_output.to(core.dtype), leading,
                               modes=modes, transpose=True)
    # (K0, ..., C') with the core (K0, ..., Kc) -> (C', Kc)
    small = torch.tensordot(projected, core, dims=(modes, modes))
    return small @ channel.t()


class TuckerLinearRule(LinearRule):
    """Backward from a stored Tucker form ``(core, U0, ..., Uc)``."""

    def weight_grad(self, stored, grad_output, input_shape):
        """:func:`hosvd_linear_weight_grad` of the stored form."""
        core, *factors = stored
        return hosvd_linear_weight_grad(core, factors, grad_output)

    def ranks(self, stored):
        """The core's shape: one rank per mode."""
        return tuple(stored[0].shape)


#: The rule of every Linear layer that stores a Tucker form.
TUCKER_LINEAR_RULE = TuckerLinearRule()


def hosvd_linear(x: torch.Tensor,
                 weight: torch.Tensor,
                 bias: Optional[torch.Tensor],
                 eps: float = 0.8,
                 shared: Optional[SharedDecomposition] = None,
                 solver: str = 'auto',
                 *,
                 settings: Optional[DecompositionSettings] = None,
                 warm_start: Optional[WarmStart] = None
                 ) -> Tuple[torch.Tensor, Optional[StoredActivation]]:
    """Linear layer that stores a HOSVD-eps form of its input for backward.

    When the weight needs no gradient nothing is decomposed and a plain
    ``F.linear`` runs.

    Args:
        x: Input (B, C), (B, N, C) or (B, H, W, C).
        weight: Weight (C', C).
        bias: Bias or None.
        eps: Explained-variance threshold in (0, 1], per mode.
        shared: Cache shared with the other layers that read ``x`` (same
            settings); the decomposition is then computed once.
        solver: How each mode finds its leading vectors (see
            :func:`~mmseg_hosvd.ops.decomposition.hosvd`).
        settings: ``eps``, ``solver`` and the Ritz seed as one
            :class:`~mmseg_hosvd.ops.DecompositionSettings` (see
            :func:`~mmseg_hosvd.ops.hosvd_conv2d`).
        warm_start: The previous step's leading vectors of this input,
            which the Ritz solver starts from; replaced by this step's
            (see :class:`~mmseg_hosvd.ops.WarmStart`). None starts cold.

    Returns:
        ``(output, stored)``: the exact output and what was stored (None when
        nothing was decomposed; 0 elements and ``shared=True`` when another
        layer stored the same decomposition).

    Raises:
        ValueError: For an input of another order, eps outside (0, 1], an
            unknown solver, settings that disagree with ``eps`` or
            ``solver``, or NaN/Inf in the input.
    """
    settings = resolve_settings(settings, eps, solver)

    def decompose(tensor):
        core, factors = hosvd(tensor, settings=settings,
                              warm_start=warm_start)
        return (core, *factors)

    out, stored, _ = decomposed_linear(x, weight, bias, TUCKER_LINEAR_RULE,
                                       decompose, shared)
    return out, stored


def subspace_hosvd_linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    ranks: Sequence[int],
    previous: Optional[Sequence[Optional[torch.Tensor]]] = None,
    shared: Optional[SharedDecomposition] = None
) -> Tuple[torch.Tensor, Optional[StoredActivation], Optional[list]]:
    """Linear layer storing a fixed-rank Tucker form from subspace iteration.

    Args:
        x: Input (B, C), (B, N, C) or (B, H, W, C).
        weight: Weight (C', C).
        bias: Bias or None.
        ranks: Fixed rank per mode of ``x``.
        previous: Factors of the previous step, warm start.
        shared: Cache shared with the other layers that read ``x``.

    Returns:
        ``(output, stored, factors)``: the exact output, what was stored and
        the factors to warm-start the next step (None when nothing was
        decomposed).

    Raises:
        ValueError: For an input of another order, or ranks that are not
            one per mode of ``x``.
    """

    def decompose(tensor):
        core, factors = subspace_hosvd(tensor, ranks, previous)
        return (core, *factors)

    out, stored, tensors = decomposed_linear(x, weight, bias,
                                             TUCKER_LINEAR_RULE, decompose,
                                             shared)
    return out, stored, None if tensors is None else list(tensors[1:])
