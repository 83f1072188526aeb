"""A hook giving a randomly initialised model the norms of a trained one.

mmseg's ResNet zero-initialises the last norm of each residual block, which
at random initialisation blocks the gradient of the block's convolutions,
and the running statistics start at mean 0, variance 1, with which the
activations of a random MobileNetV2 fade to ~1e-8 by its head under frozen
statistics (``norm_eval``). A pre-trained and calibrated checkpoint (the
protocol's) has neither.
"""
import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS
from torch.nn.modules.batchnorm import _BatchNorm

from mmseg_hosvd.engine.hooks.unwrap import unwrap_model


@HOOKS.register_module()
class NormReinitTestHook(Hook):
    """Before training: norm weights from uniform(0.5, 1.5), then the
    running statistics of the validation batches (as the protocol's
    calibration stage computes them).

    Args:
        classifier_std: When given, the classifier (``decode_head.conv_seg``)
            is drawn from a normal of this std, as a calibrated one: mmseg
            initialises it at 0.01, and the protocol's calibrated DeepLabV3
            has 0.10; a 10x smaller classifier sends a 10x smaller gradient
            back to every fine-tuned layer.
    """

    priority = 'HIGHEST'

    def __init__(self, classifier_std=None):
        self.classifier_std = classifier_std

    @torch.no_grad()
    def before_train(self, runner):
        model = unwrap_model(runner.model)
        generator = torch.Generator().manual_seed(0)
        if self.classifier_std is not None:
            weight = model.decode_head.conv_seg.weight
            weight.copy_(self.classifier_std *
                         torch.randn(weight.shape, generator=generator))
        norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
        for norm in norms:
            norm.weight.copy_(
                torch.rand(norm.weight.shape, generator=generator) + 0.5)
            norm.reset_running_stats()
            norm.momentum = None  # a cumulative average over the batches
        was_training = model.training
        model.train()
        for batch in runner.val_dataloader:
            data = model.data_preprocessor(batch, False)
            model(data['inputs'], mode='tensor')
        model.train(was_training)
        for norm in norms:
            norm.momentum = 0.1
