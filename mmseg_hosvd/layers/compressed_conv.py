"""``nn.Conv2d`` subclasses that store a compressed input for backward.

Each one computes the exact convolution. Only in training mode with grad
enabled and a trainable weight does it store a compressed form of its input;
otherwise it is a plain ``nn.Conv2d``. After each training forward,
``last_stored`` holds what was stored
(:class:`~mmseg_hosvd.ops.StoredActivation`).
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import nn

from ..ops import (
    ConvGeometry,
    DecompositionSettings,
    SharedDecomposition,
    StoredActivation,
    check_bits,
    check_group_size,
    check_eps,
    check_radius,
    check_seed,
    gradient_filter_conv2d,
    hosvd_conv2d,
    quantized_conv2d,
    svd_conv2d,
)
from .rounding_noise import SeededRoundingNoise
from .warm_started import WarmStarted


class CompressedConv2d(nn.Conv2d):
    """Base class: exact forward, compressed input saved for backward.

    Subclasses implement :meth:`compressed_forward`.
    """

    last_stored: Optional[StoredActivation]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.last_stored = None

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, **options) -> 'CompressedConv2d':
        """Builds the compressed twin of ``conv``, sharing its Parameters.

        The new module holds the very ``weight`` and ``bias`` Parameter
        objects of ``conv``, so optimizers, state dicts and checkpoints see
        no difference.

        Args:
            conv: The convolution to wrap.
            **options: The subclass's own arguments (eps, radius,
                ``shared_input``...).

        Returns:
            The new module, in ``conv``'s training mode.

        Raises:
            TypeError: If ``conv`` is not an ``nn.Conv2d``.
        """
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f'{cls.__name__}.from_conv expects an nn.Conv2d, '
                            f'got {type(conv).__name__}')
        new = cls(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            groups=conv.groups,
            bias=conv.bias is not None,
            padding_mode=conv.padding_mode,
            device='meta',
            **options)
        new.weight = conv.weight
        new.bias = conv.bias
        new.train(conv.training)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Exact convolution; compressed storage only when training."""
        if not (self.training and torch.is_grad_enabled()):
            return super().forward(x)
        geo = ConvGeometry.of(self)
        if self.padding_mode != 'zeros':
            top, bottom, left, right = geo.padding
            x = F.pad(x, (left, right, top, bottom), mode=self.padding_mode)
            geo = geo._replace(padding=(0, 0, 0, 0))
        out, self.last_stored = self.compressed_forward(x, geo)
        return out

    def compressed_forward(
            self, x: torch.Tensor, geo: ConvGeometry
    ) -> Tuple[torch.Tensor, Optional[StoredActivation]]:
        """Runs the compressed convolution on a zero-padded geometry."""
        raise NotImplementedError


class SharedInputConv2d(CompressedConv2d):
    """A compressed convolution whose decomposition can be shared.

    Convolutions of one class and settings that read the same tensor are
    built with one :class:`~mmseg_hosvd.ops.SharedDecomposition` as
    ``shared_input``; the input is then decomposed and stored once per
    forward.

    Args:
        *args: As for ``nn.Conv2d``.
        eps: Explained-variance threshold in (0, 1]; 1 is exact.
        shared_input: The cache shared with the other convolutions reading
            the same tensor, or None.
        **kwargs: As for ``nn.Conv2d``.
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
class Conv2dHOSVD(WarmStarted, SharedInputConv2d):
    """Convolution that stores a HOSVD-eps (Tucker) form of its input.

    Args:
        *args: As for ``nn.Conv2d``.
        eps: Explained-variance threshold in (0, 1] per mode; 1 is exact.
        solver: How each mode finds its leading vectors (see
            :mod:`mmseg_hosvd.ops.solvers`): 'auto' (default) uses
            randomized subspace iteration on large modes, which keeps the
            eps guarantee at a rank equal to the exact one or slightly
            larger; 'eigh' takes every mode from the full Gram
            eigendecomposition (the paper's exact ranks, slower); 'ritz'
            forces the randomized solver where it applies.
        seed: Seed of the randomized solver's private generator.
        warm_start: Whether the randomized solver starts each step from
            the vectors it found the step before (default; a third of the
            cost, a rank equal or a few vectors larger). False makes each
            step's decomposition depend on its input and seed only.
        **kwargs: As for ``nn.Conv2d`` (and ``shared_input``).
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

    def compressed_forward(self, x, geo):
        return hosvd_conv2d(x, self.weight, self.bias, geo,
                            shared=self.shared_input,
                            settings=self.decomposition,
                            warm_start=self.warm_start)

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, solver={self.solver!r}'
                f'{self.warm_start_repr()}')


@MODELS.register_module()
class Conv2dSVD(SharedInputConv2d):
    """Convolution that stores an SVD-eps form of its (B, CHW) input.

    Args:
        *args: As for ``nn.Conv2d``.
        eps: Explained-variance threshold in (0, 1]; 1 is exact.
        **kwargs: As for ``nn.Conv2d`` (and ``shared_input``).
    """

    def compressed_forward(self, x, geo):
        return svd_conv2d(x, self.weight, self.bias, geo, self.eps,
                          self.shared_input)


@MODELS.register_module()
class Conv2dGradFilter(CompressedConv2d):
    """Convolution with Gradient Filter's r x r patch-constant backward.

    Args:
        *args: As for ``nn.Conv2d``.
        radius: Patch size r >= 1 on the output grid.
        **kwargs: As for ``nn.Conv2d``.
    """

    def __init__(self, *args, radius: int = 2, **kwargs):
        super().__init__(*args, **kwargs)
        self.radius = check_radius(radius)

    def compressed_forward(self, x, geo):
        return gradient_filter_conv2d(x, self.weight, self.bias, geo,
                                      self.radius)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, radius={self.radius}'


@MODELS.register_module()
class Conv2dQuantized(SeededRoundingNoise, CompressedConv2d):
    """Convolution that stores its input quantized per group.

    Args:
        *args: As for ``nn.Conv2d``.
        bits: Bits per stored element, 2, 4 or 8.
        group_size: Elements per quantization group (a multiple of 4).
        seed: Seed of the private generator of the rounding noise (the
            global random state is untouched).
        shared_input: The cache shared with the other layers reading the
            same tensor (its codes are then stored once), or None.
        **kwargs: As for ``nn.Conv2d``.
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

    def compressed_forward(self, x, geo):
        return quantized_conv2d(x, self.weight, self.bias, geo, self.bits,
                                self.group_size,
                                self.rounding_generator(x.device),
                                self.shared_input)

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, bits={self.bits}, '
                f'group_size={self.group_size}')
