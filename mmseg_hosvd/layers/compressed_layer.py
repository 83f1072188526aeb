"""What the compressed Conv2d and Linear layers share.

:class:`CompressedLayer` is the base of both (:mod:`.compressed_conv`,
:mod:`.compressed_linear`): the state ``last_stored``, the train/eval
switch of the forward and the swap-in from an existing module keeping its
Parameters. The mixins after it hold each method's settings and its call
into :mod:`mmseg_hosvd.ops`, once for both operations: ``geo`` is the
convolution's geometry, or None for a Linear layer.
"""
from typing import Optional, Tuple

import torch
from torch import nn

from ..ops import (
    DecompositionSettings,
    SharedDecomposition,
    StoredActivation,
    check_bits,
    check_eps,
    check_group_size,
    check_seed,
)
from ..ops.hosvd_layer import hosvd_layer
from ..ops.quantized_layer import quantized_layer
from ..ops.svd_layer import svd_layer
from .rounding_noise import SeededRoundingNoise
from .warm_started import WarmStarted


class CompressedLayer:
    """Base class: exact forward, compressed input saved for backward.

    It comes before ``nn.Conv2d`` or ``nn.Linear`` in a subclass's bases;
    the subclass sets :attr:`wrapped` and :attr:`builder` and implements
    :meth:`constructor_args` and :meth:`training_forward`. A method
    implements ``compressed_forward``.
    """

    #: The torch module a compressed layer replaces.
    wrapped: type = nn.Module
    #: The name of the subclass's classmethod that calls :meth:`wrap`.
    builder: str = 'wrap'
    last_stored: Optional[StoredActivation]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.last_stored = None

    @classmethod
    def constructor_args(cls, module: nn.Module) -> Tuple[tuple, dict]:
        """The positional and keyword arguments that rebuild ``module``."""
        raise NotImplementedError

    @classmethod
    def wrap(cls, module: nn.Module, **options) -> 'CompressedLayer':
        """Builds the compressed twin of ``module``, sharing its Parameters.

        The new module holds the very ``weight`` and ``bias`` Parameter
        objects of ``module``, so optimizers, state dicts and checkpoints
        see no difference.

        Args:
            module: The layer to wrap, an instance of :attr:`wrapped`.
            **options: The subclass's own arguments (eps, radius, bits,
                ``shared_input``...).

        Returns:
            The new module, in ``module``'s training mode.

        Raises:
            TypeError: If ``module`` is not an instance of :attr:`wrapped`.
        """
        if not isinstance(module, cls.wrapped):
            raise TypeError(f'{cls.__name__}.{cls.builder} expects an '
                            f'nn.{cls.wrapped.__name__}, got '
                            f'{type(module).__name__}')
        args, kwargs = cls.constructor_args(module)
        new = cls(*args, bias=module.bias is not None, device='meta',
                  **kwargs, **options)
        new.weight = module.weight
        new.bias = module.bias
        new.train(module.training)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Exact output; compressed storage only when training."""
        if not (self.training and torch.is_grad_enabled()):
            return super().forward(x)
        out, self.last_stored = self.training_forward(x)
        return out

    def training_forward(
            self, x: torch.Tensor
    ) -> Tuple[torch.Tensor, Optional[StoredActivation]]:
        """Runs ``compressed_forward`` with the operation's arguments."""
        raise NotImplementedError


class SharedInput:
    """Mixin: ``eps`` and a decomposition that can be shared.

    Layers of one class and settings that read the same tensor (the ASPP
    branches, the q, k and v projections) are built with one
    :class:`~mmseg_hosvd.ops.SharedDecomposition` as ``shared_input``; the
    input is then decomposed and stored once per forward.

    Args:
        *args: As for the wrapped module.
        eps: Explained-variance threshold in (0, 1]; 1 is exact.
        shared_input: The cache shared with the other layers reading the
            same tensor, or None.
        **kwargs: As for the wrapped module.
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


class HOSVDLayer(WarmStarted, SharedInput):
    """Mixin: stores a HOSVD-eps (Tucker) form of the input.

    Args:
        *args: As for the wrapped module.
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
        keep_batch: Whether the batch mode is kept whole (each sample its
            own slice of the core; only the other modes truncated).
        spatial_eps: The threshold of the spatial modes (a convolution
            input's height and width, a Linear input's token modes); None
            truncates them at ``eps``.
        **kwargs: As for :class:`SharedInput`.
    """

    def __init__(self, *args, solver: str = 'auto', seed: int = 0,
                 warm_start: bool = True, keep_batch: bool = False,
                 spatial_eps: Optional[float] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.decomposition = DecompositionSettings(self.eps, solver, seed,
                                                   keep_batch, spatial_eps)
        self.init_warm_start(warm_start)

    @property
    def solver(self) -> str:
        """The decomposition's solver name."""
        return self.decomposition.solver

    def compressed_forward(self, x, geo=None):
        """:func:`~mmseg_hosvd.ops.hosvd_layer.hosvd_layer` of ``x``."""
        return hosvd_layer(x, self.weight, self.bias, geo,
                           self.decomposition, self.shared_input,
                           self.warm_start)

    def extra_repr(self) -> str:
        kept = (', keep_batch=True' if self.decomposition.keep_batch
                else '')
        spatial = self.decomposition.spatial_eps
        spatial = '' if spatial is None else f', spatial_eps={spatial}'
        return (f'{super().extra_repr()}, solver={self.solver!r}'
                f'{self.warm_start_repr()}{kept}{spatial}')


class SVDLayer(SharedInput):
    """Mixin: stores an SVD-eps form of the (B, rest) input matrix."""

    def compressed_forward(self, x, geo=None):
        """:func:`~mmseg_hosvd.ops.svd_layer.svd_layer` of ``x``."""
        return svd_layer(x, self.weight, self.bias, geo, self.eps,
                         self.shared_input)


class QuantizedLayer(SeededRoundingNoise):
    """Mixin: stores the input quantized per group.

    Args:
        *args: As for the wrapped module.
        bits: Bits per stored element, 2, 4 or 8.
        group_size: Elements per quantization group (a multiple of 4).
        seed: Seed of the private generator of the rounding noise (the
            global random state is untouched).
        shared_input: The cache shared with the other layers reading the
            same tensor (its codes are then stored once), or None.
        **kwargs: As for the wrapped module.
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

    def compressed_forward(self, x, geo=None):
        """:func:`~mmseg_hosvd.ops.quantized_layer.quantized_layer` of
        ``x``."""
        return quantized_layer(x, self.weight, self.bias, geo, self.bits,
                               self.group_size,
                               self.rounding_generator(x.device),
                               self.shared_input)

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, bits={self.bits}, '
                f'group_size={self.group_size}')
