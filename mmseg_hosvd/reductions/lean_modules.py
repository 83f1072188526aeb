"""Lean replacements for the activations of the fine-tuned region."""
from torch import nn

from ..layers.rounding_noise import SeededRoundingNoise
from ..ops import DecompositionSettings, check_seed
from ..ops.lean_activations import bitmask_relu, frozen_batch_norm
from ..ops.quantized_activations import quantized_gelu, quantized_layer_norm
from ..ops.quantized_codes import check_bits, check_group_size


class BitMaskReLU(nn.Module):
    """ReLU or ReLU6 that stores a 1-bit mask for backward (exact).

    Args:
        upper: 6 for ReLU6, None for ReLU.
    """

    def __init__(self, upper=None):
        super().__init__()
        self.upper = upper

    @classmethod
    def from_module(cls, module: nn.Module) -> 'BitMaskReLU':
        """Replacement of an ``nn.ReLU`` or ``nn.ReLU6``."""
        if isinstance(module, nn.ReLU6):
            return cls(upper=6.0)
        if isinstance(module, nn.ReLU):
            return cls()
        raise TypeError(f'expects nn.ReLU or nn.ReLU6, got '
                        f'{type(module).__name__}')

    def forward(self, x):
        return bitmask_relu(x, self.upper)

    def extra_repr(self) -> str:
        return 'relu6' if self.upper is not None else 'relu'


class LeanFrozenBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d that, in eval mode, stores nothing full-size for backward.

    In eval mode (frozen statistics) its input gradient needs only the
    per-channel scale; a trained weight gets its gradient from a HOSVD-eps
    form of the input. In training mode it is a plain ``nn.BatchNorm2d``.
    The module shares the Parameters and buffers of the one it replaces.

    Args:
        *args: As for ``nn.BatchNorm2d``.
        compress_eps: Explained variance of the stored input.
        solver: HOSVD-eps solver of the stored input (see
            :mod:`mmseg_hosvd.ops.solvers`).
        seed: Seed of the randomized solver.
        **kwargs: As for ``nn.BatchNorm2d``.
    """

    def __init__(self, *args, compress_eps: float = 0.8,
                 solver: str = 'auto', seed: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.decomposition = DecompositionSettings(compress_eps, solver, seed)
        self.last_stored_numel = 0

    @property
    def compress_eps(self) -> float:
        """Explained variance of the stored input."""
        return self.decomposition.eps

    @property
    def solver(self) -> str:
        """HOSVD solver of the stored input."""
        return self.decomposition.solver

    @classmethod
    def from_module(cls, bn: nn.BatchNorm2d, compress_eps: float = 0.8,
                    solver: str = 'auto') -> 'LeanFrozenBatchNorm2d':
        """Replacement of ``bn`` sharing its Parameters and buffers."""
        if not isinstance(bn, nn.modules.batchnorm._BatchNorm):
            raise TypeError(f'expects a BatchNorm, got {type(bn).__name__}')
        new = cls(bn.num_features, bn.eps, bn.momentum, bn.affine,
                  bn.track_running_stats, device='meta',
                  compress_eps=compress_eps, solver=solver)
        new.weight, new.bias = bn.weight, bn.bias
        new.running_mean, new.running_var = bn.running_mean, bn.running_var
        new.num_batches_tracked = bn.num_batches_tracked
        new.train(bn.training)
        return new

    def forward(self, x):
        if self.training or self.running_mean is None:
            return super().forward(x)
        out, self.last_stored_numel = frozen_batch_norm(
            x, self.weight, self.bias, self.running_mean, self.running_var,
            self.eps, settings=self.decomposition)
        return out

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, lean, '
                f'compress_eps={self.compress_eps}, solver={self.solver!r}')


class QuantizedActivation(SeededRoundingNoise):
    """Mixin: a module that keeps its input as per-group codes.

    Args:
        *args: As for the wrapped module.
        bits: Bits per stored element, 2, 4 or 8.
        group_size: Elements per quantization group.
        seed: Seed of the private generator of the rounding noise.
        **kwargs: As for the wrapped module.
    """

    def __init__(self, *args, bits: int = 8, group_size: int = 256,
                 seed: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.bits = check_bits(bits)
        self.group_size = check_group_size(group_size)
        self.seed = check_seed(seed)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, bits={self.bits}'


class QuantizedLayerNorm(QuantizedActivation, nn.LayerNorm):
    """LayerNorm that keeps its input as per-group codes for backward.

    The output is exact; the input and affine gradients come from the
    dequantized input (approximate; see
    :mod:`mmseg_hosvd.ops.quantized_activations`). It shares the Parameters
    of the LayerNorm it replaces, so state dicts are unchanged. Built as
    ``nn.LayerNorm`` is, with the keyword arguments of
    :class:`QuantizedActivation`.
    """

    @classmethod
    def from_module(cls, norm: nn.LayerNorm, bits: int = 8,
                    group_size: int = 256) -> 'QuantizedLayerNorm':
        """Replacement of ``norm`` sharing its Parameters."""
        if not isinstance(norm, nn.LayerNorm):
            raise TypeError(f'expects nn.LayerNorm, got '
                            f'{type(norm).__name__}')
        new = cls(norm.normalized_shape, norm.eps, False, bits=bits,
                  group_size=group_size)
        new.elementwise_affine = norm.elementwise_affine
        new.weight, new.bias = norm.weight, norm.bias
        new.train(norm.training)
        return new

    def forward(self, x):
        return quantized_layer_norm(x, self.normalized_shape, self.weight,
                                    self.bias, self.eps, self.bits,
                                    self.group_size,
                                    self.rounding_generator(x.device))


class QuantizedGELU(QuantizedActivation, nn.GELU):
    """GELU that keeps its input as per-group codes for backward.

    The output is exact, the input gradient is GELU's derivative at the
    dequantized input (approximate).

    Args:
        approximate: 'none' or 'tanh', as ``nn.GELU``.
        bits: Bits per stored element, 2, 4 or 8.
        group_size: Elements per quantization group.
        seed: Seed of the private generator of the rounding noise.
    """

    def __init__(self, approximate: str = 'none', bits: int = 8,
                 group_size: int = 256, seed: int = 0):
        super().__init__(approximate, bits=bits, group_size=group_size,
                         seed=seed)

    @classmethod
    def from_module(cls, gelu: nn.GELU, bits: int = 8,
                    group_size: int = 256) -> 'QuantizedGELU':
        """Replacement of an ``nn.GELU``."""
        if not isinstance(gelu, nn.GELU):
            raise TypeError(f'expects nn.GELU, got {type(gelu).__name__}')
        return cls(gelu.approximate, bits, group_size)

    def forward(self, x):
        return quantized_gelu(x, self.approximate, self.bits,
                              self.group_size,
                              self.rounding_generator(x.device))
