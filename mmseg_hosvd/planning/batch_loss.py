"""The training loss of a segmentor on one loader batch, as a callable."""
from typing import Callable

import torch
from torch import nn


def batch_loss(model: nn.Module,
               data_batch: dict) -> Callable[[], torch.Tensor]:
    """A function that runs the training forward of ``model`` on
    ``data_batch`` and returns the summed loss, as MMEngine's training step
    computes it (the data preprocessor in training mode, the loss forward,
    ``parse_losses``).

    Args:
        model: The unwrapped segmentor.
        data_batch: A loader batch (images and labels).

    Returns:
        A function of no arguments returning the scalar loss.
    """

    def loss() -> torch.Tensor:
        batch = model.data_preprocessor(data_batch, True)
        losses = model._run_forward(batch, mode='loss')
        return model.parse_losses(losses)[0]

    return loss
