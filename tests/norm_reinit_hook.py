"""A hook giving every norm layer non-zero weights, as trained models have.

mmseg's ResNet zero-initialises the last norm of each residual block, which
at random initialisation blocks the gradient of the block's convolutions;
a checkpoint after pre-training has no such zeros.
"""
import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS
from torch.nn.modules.batchnorm import _BatchNorm

from mmseg_hosvd.engine.hooks.unwrap import unwrap_model


@HOOKS.register_module()
class NormReinitTestHook(Hook):
    """Draws every norm weight from uniform(0.5, 1.5) before training."""

    priority = 'HIGHEST'

    @torch.no_grad()
    def before_train(self, runner):
        generator = torch.Generator().manual_seed(0)
        for module in unwrap_model(runner.model).modules():
            if isinstance(module, _BatchNorm) and module.weight is not None:
                module.weight.copy_(
                    torch.rand(module.weight.shape, generator=generator) + 0.5)
