"""``nn.Linear`` subclasses that store a compressed input for backward.

The Linear counterparts of :mod:`.compressed_conv`, for the token tensors of
transformer segmenters: the input is (B, C), (B, N, C) or (B, H, W, C).
Each computes the exact ``F.linear``. Only in training mode with grad
enabled and a trainable weight does it store a compressed form of its
input; otherwise it is a plain ``nn.Linear``. After each training forward,
``last_stored`` holds what was stored
(:class:`~mmseg_hosvd.ops.StoredActivation`). What they share with the
convolutions is in :mod:`.compressed_layer`.
"""
from typing import Optional, Tuple

import torch
from mmseg.registry import MODELS
from torch import nn

from ..ops import StoredActivation
from .compressed_layer import (
    CompressedLayer,
    HOSVDLayer,
    QuantizedLayer,
    SharedInput,
    SVDLayer,
)


class CompressedLinear(CompressedLayer, nn.Linear):
    """Base class of the Linear layers; subclasses implement
    :meth:`compressed_forward`."""

    wrapped = nn.Linear
    builder = 'from_linear'

    @classmethod
    def constructor_args(cls, module: nn.Linear) -> Tuple[tuple, dict]:
        """The arguments of ``nn.Linear`` that rebuild ``module``."""
        return (module.in_features, module.out_features), {}

    #: Builds the compressed twin of an ``nn.Linear``, sharing its
    #: Parameters (:meth:`~.compressed_layer.CompressedLayer.wrap`).
    from_linear = classmethod(CompressedLayer.wrap.__func__)

    def training_forward(self, x):
        """:meth:`compressed_forward` of ``x``."""
        return self.compressed_forward(x)

    def compressed_forward(
            self, x: torch.Tensor
    ) -> Tuple[torch.Tensor, Optional[StoredActivation]]:
        """Runs the compressed Linear layer."""
        raise NotImplementedError


class SharedInputLinear(SharedInput, CompressedLinear):
    """A compressed Linear layer whose decomposition can be shared (the q,
    k and v projections); its arguments are those of ``nn.Linear`` and of
    :class:`~.compressed_layer.SharedInput`."""


@MODELS.register_module()
class LinearHOSVD(HOSVDLayer, SharedInputLinear):
    """Linear layer that stores a HOSVD-eps (Tucker) form of its input.

    The input's modes (batch, tokens or height and width, channels) are
    decomposed as for :class:`~.compressed_conv.Conv2dHOSVD`; the weight
    gradient is formed in the compressed space. Its arguments are those of
    ``nn.Linear`` and of :class:`~.compressed_layer.HOSVDLayer` (eps,
    solver, seed, warm_start, shared_input).
    """


@MODELS.register_module()
class LinearSVD(SVDLayer, SharedInputLinear):
    """Linear layer that stores an SVD-eps form of its (B, rest) input.

    Its arguments are those of ``nn.Linear`` and of
    :class:`~.compressed_layer.SharedInput` (eps, shared_input).
    """


@MODELS.register_module()
class LinearQuantized(QuantizedLayer, CompressedLinear):
    """Linear layer that stores its input quantized per group.

    Its arguments are those of ``nn.Linear`` and of
    :class:`~.compressed_layer.QuantizedLayer` (bits, group_size, seed,
    shared_input).
    """
