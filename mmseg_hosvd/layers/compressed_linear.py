"""``nn.Linear`` subclasses that store a compressed input for backward.

The Linear counterparts of :mod:`.compressed_conv`, for the token tensors of
transformer segmenters: the input is (B, C), (B, N, C) or (B, H, W, C).
Each computes the exact ``F.linear``. Only in training mode with grad
enabled and a trainable weight does it store a compressed form of its
input; otherwise it is a plain ``nn.Linear``. After each training forward,
``last_stored`` holds what was stored
(:class:`~mmseg_hosvd.ops.StoredActivation`).
"""
from typing import Optional, Tuple

import torch
from mmseg.registry import MODELS
from torch import nn

from ..ops import (
    DecompositionSettings,
    SharedDecomposition,
    StoredActivation,
    check_bits,
    check_eps,
    check_group_size,
    check_seed,
    hosvd_linear,
    quantized_linear,
    svd_linear,
)
from .rounding_noise import SeededRoundingNoise
from .warm_started import WarmStarted


class CompressedLinear(nn.Linear):
    """Base class: exact forward, compressed input saved for backward.

    Subclasses implement :meth:`compressed_forward`.
    """

    last_stored: Optional[StoredActivation]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.last_stored = None

    @classmethod
    def from_linear(cls, linear: nn.Linear, **options) -> 'CompressedLinear':
        """Builds the compressed twin of ``linear``, sharing its Parameters.

        The new module holds the very ``weight`` and ``bias`` Parameter
        objects of ``linear``, so optimizers, state dicts and checkpoints see
        no difference.

        Args:
            linear: The Linear layer to wrap (mmcv's ``Linear`` too).
            **options: The subclass's own arguments (eps, bits,
                ``shared_input``...).

        Returns:
            The new module, in ``linear``'s training mode.

        Raises:
            TypeError: If ``linear`` is not an ``nn.Linear``.
        """
        if not isinstance(linear, nn.Linear):
            raise TypeError(f'{cls.__name__}.from_linear expects an '
                            f'nn.Linear, got {type(linear).__name__}')
        new = cls(linear.in_features, linear.out_features,
                  bias=linear.bias is not None, device='meta', **options)
        new.weight = linear.weight
        new.bias = linear.bias
        new.train(linear.training)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Exact ``F.linear``; compressed storage only when training."""
        if not (self.training and torch.is_grad_enabled()):
            return super().forward(x)
        out, self.last_stored = self.compressed_forward(x)
        return out

    def compressed_forward(
            self, x: torch.Tensor
    ) -> Tuple[torch.Tensor, Optional[StoredActivation]]:
        """Runs the compressed Linear layer."""
        raise NotImplementedError


class SharedInputLinear(CompressedLinear):
    """A compressed Linear layer whose decomposition can be shared.

    Layers of one class and settings that read the same tensor (q, k and v
    projections) are built with one
    :class:`~mmseg_hosvd.ops.SharedDecomposition` as ``shared_input``; the
    input is then decomposed and stored once per forward.

    Args:
        *args: As for ``nn.Linear``.
        eps: Explained-variance threshold in (0, 1]; 1 is exact.
        shared_input: The cache shared with the other layers reading the
            same tensor, or None.
        **kwargs: As for ``nn.Linear``.
    """

    def __init__(self,
                 *args,
                 eps: float = 0.8,
                 shared_input: Optional[SharedDecomposition] = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.eps = check_eps(eps)
        self.shared_input = shared_input

    def extra_repr(self) -> str:
        shared = ', shared input' if self.shared_input is not None else ''
        return f'{super().extra_repr()}, eps={self.eps}{shared}'


@MODELS.register_module()
class LinearHOSVD(WarmStarted, SharedInputLinear):
    """Linear layer that stores a HOSVD-eps (Tucker) form of its input.

    The input's modes (batch, tokens or height and width, channels) are
    decomposed as for :class:`~.compressed_conv.Conv2dHOSVD`; the weight
    gradient is formed in the compressed space.

    Args:
        *args: As for ``nn.Linear``.
        eps: Explained-variance threshold in (0, 1] per mode; 1 is exact.
        solver: How each mode finds its leading vectors, as for
            :class:`~.compressed_conv.Conv2dHOSVD`.
        seed: Seed of the randomized solver's private generator.
        warm_start: Whether the randomized solver starts each step from
            the vectors it found the step before (default; a third of the
            cost, a rank equal or a few vectors larger). False makes each
            step's decomposition depend on its input and seed only.
        **kwargs: As for ``nn.Linear`` (and ``shared_input``).
    """

    def __init__(self, *args, solver: str = 'auto', seed: int = 0,
                 warm_start: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.decomposition = DecompositionSettings(self.eps, solver, seed)
        self.init_warm_start(warm_start)

    @property
    def solver(self) -> str:
        """The decomposition's solver name."""
        return self.decomposition.solver

    def compressed_forward(self, x):
        return hosvd_linear(x, self.weight, self.bias,
                            shared=self.shared_input,
                            settings=self.decomposition,
                            warm_start=self.warm_start)

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, solver={self.solver!r}'
                f'{self.warm_start_repr()}')


@MODELS.register_module()
class LinearSVD(SharedInputLinear):
    """Linear layer that stores an SVD-eps form of its (B, rest) input.

    Args:
        *args: As for ``nn.Linear``.
        eps: Explained-variance threshold in (0, 1]; 1 is exact.
        **kwargs: As for ``nn.Linear`` (and ``shared_input``).
    """

    def compressed_forward(self, x):
        return svd_linear(x, self.weight, self.bias, self.eps,
                          self.shared_input)


@MODELS.register_module()
class LinearQuantized(SeededRoundingNoise, CompressedLinear):
    """Linear layer that stores its input quantized per group.

    Args:
        *args: As for ``nn.Linear``.
        bits: Bits per stored element, 2, 4 or 8.
        group_size: Elements per quantization group (a multiple of 4).
        seed: Seed of the private generator of the rounding noise (the
            global random state is untouched).
        shared_input: The cache shared with the other layers reading the
            same tensor (its codes are then stored once), or None.
        **kwargs: As for ``nn.Linear``.
    """

    def __init__(self, *args, bits: int = 8, group_size: int = 256,
                 seed: int = 0,
                 shared_input: Optional[SharedDecomposition] = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.shared_input = shared_input
        self.bits = check_bits(bits)
        self.group_size = check_group_size(group_size)
        self.seed = check_seed(seed)

    def compressed_forward(self, x):
        return quantized_linear(x, self.weight, self.bias, self.bits,
                                self.group_size,
                                self.rounding_generator(x.device),
                                self.shared_input)

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, bits={self.bits}, '
                f'group_size={self.group_size}')
