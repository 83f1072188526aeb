"""``nn.Conv2d`` subclasses that store a compressed input for backward.

Each one computes the exact convolution. Only in training mode with grad
enabled and a trainable weight does it store a compressed form of its input;
otherwise it is a plain ``nn.Conv2d``. After each training forward,
``last_stored`` holds what was stored
(:class:`~mmseg_hosvd.ops.StoredActivation`). What they share with the
Linear layers is in :mod:`.compressed_layer`.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import nn

from ..ops import (
    ConvGeometry,
    StoredActivation,
    check_radius,
    gradient_filter_conv2d,
)
from .compressed_layer import (
    CompressedLayer,
    HOSVDLayer,
    QuantizedLayer,
    SharedInput,
    SVDLayer,
)


class CompressedConv2d(CompressedLayer, nn.Conv2d):
    """Base class of the convolutions: exact forward, compressed input saved
    for backward.

    A padding mode other than zeros is applied to the input before
    :meth:`compressed_forward`, which subclasses implement and which sees a
    zero-padded geometry.
    """

    wrapped = nn.Conv2d
    builder = 'from_conv'

    @classmethod
    def constructor_args(cls, module: nn.Conv2d) -> Tuple[tuple, dict]:
        """The arguments of ``nn.Conv2d`` that rebuild ``module``."""
        return (module.in_channels, module.out_channels,
                module.kernel_size), dict(stride=module.stride,
                                          padding=module.padding,
                                          dilation=module.dilation,
                                          groups=module.groups,
                                          padding_mode=module.padding_mode)

    #: Builds the compressed twin of an ``nn.Conv2d``, sharing its
    #: Parameters (:meth:`~.compressed_layer.CompressedLayer.wrap`).
    from_conv = classmethod(CompressedLayer.wrap.__func__)

    def training_forward(self, x):
        """Pads a non-zero padding mode, then :meth:`compressed_forward`."""
        geo = ConvGeometry.of(self)
        if self.padding_mode != 'zeros':
            top, bottom, left, right = geo.padding
            x = F.pad(x, (left, right, top, bottom), mode=self.padding_mode)
            geo = geo._replace(padding=(0, 0, 0, 0))
        return self.compressed_forward(x, geo)

    def compressed_forward(
            self, x: torch.Tensor, geo: ConvGeometry
    ) -> Tuple[torch.Tensor, Optional[StoredActivation]]:
        """Runs the compressed convolution on a zero-padded geometry."""
        raise NotImplementedError


class SharedInputConv2d(SharedInput, CompressedConv2d):
    """A compressed convolution whose decomposition can be shared.

    Args:
        *args: As for ``nn.Conv2d``.
        eps: Explained-variance threshold in (0, 1]; 1 is exact.
        shared_input: The cache shared with the other convolutions reading
            the same tensor, or None.
        **kwargs: As for ``nn.Conv2d``.
    """


@MODELS.register_module()
class Conv2dHOSVD(HOSVDLayer, SharedInputConv2d):
    """Convolution that stores a HOSVD-eps (Tucker) form of its input.

    Args:
        *args: As for ``nn.Conv2d``.
        eps: Explained-variance threshold in (0, 1] per mode; 1 is exact.
        solver: How each mode finds its leading vectors
            (:class:`~.compressed_layer.HOSVDLayer`).
        seed: Seed of the randomized solver's private generator.
        warm_start: Whether the randomized solver starts each step from
            the vectors it found the step before.
        **kwargs: As for ``nn.Conv2d`` (and ``shared_input``).
    """


@MODELS.register_module()
class Conv2dSVD(SVDLayer, SharedInputConv2d):
    """Convolution that stores an SVD-eps form of its (B, CHW) input.

    Args:
        *args: As for ``nn.Conv2d``.
        eps: Explained-variance threshold in (0, 1]; 1 is exact.
        **kwargs: As for ``nn.Conv2d`` (and ``shared_input``).
    """


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
class Conv2dQuantized(QuantizedLayer, CompressedConv2d):
    """Convolution that stores its input quantized per group.

    Args:
        *args: As for ``nn.Conv2d``.
        bits: Bits per stored element, 2, 4 or 8.
        group_size: Elements per quantization group (a multiple of 4).
        seed: Seed of the private generator of the rounding noise.
        shared_input: The cache shared with the other layers reading the
            same tensor (its codes are then stored once), or None.
        **kwargs: As for ``nn.Conv2d``.
    """
