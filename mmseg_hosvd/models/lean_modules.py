"""Lean replacements for the activations of the fine-tuned region."""
from torch import nn

from ..ops import DecompositionSettings
from ..ops.lean_activations import bitmask_relu, frozen_batch_norm


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
