"""How far mixed precision moves the fine-tuned layers' weight gradients.

Autocast runs the forward's matrix products in a 16-bit dtype, so every
weight gradient of the fine-tuned layers changes, not only those a
compressed method touches. Its cost in the planner's terms is the same
relative error ``||dW_amp - dW|| / ||dW||`` per layer, and over the layers'
gradients taken together: two backwards of the same batch from the same
state, one in float32 and one under the run's autocast, compared.
"""
from contextlib import AbstractContextManager
from typing import Callable, Dict, NamedTuple, Optional

import torch
from torch import nn

from ..utils.untouched_training import training_untouched
from .gradient_error import whole_relative_error

#: Where a run keeps the measured record: its MessageHub runtime-info key
#: and its checkpoints' meta key (``AutocastErrorHook``).
AUTOCAST_ERROR_KEY = 'autocast_gradient_error'


def _weight_grads(model: nn.Module, layers: Dict[str, nn.Module],
                  loss: Callable[[], torch.Tensor],
                  context: Callable[[], AbstractContextManager]
                  ) -> Dict[str, torch.Tensor]:
    """The layers' weight gradients of one backward of ``loss`` (its
    forward inside ``context()``), from the model's current state, which
    is put back afterwards."""
    with training_untouched(model):
        with context():
            value = loss()
        value.backward()
        grads = {}
        for name, layer in layers.items():
            if layer.weight.grad is None:
                raise ValueError(
                    f'layer {name!r} got no weight gradient: it must be '
                    'trainable and reached by the loss')
            grads[name] = layer.weight.grad.detach().float().clone()
    return grads


class AutocastGradientError(NamedTuple):
    """What autocast does to the fine-tuned layers' weight gradients.

    Attributes:
        layers: ``||dW_amp - dW|| / ||dW||`` (Frobenius norms) by layer
            name; 0 for a layer whose exact gradient is zero.
        whole: The same over the layers' gradients taken as one vector
            (:func:`~.gradient_error.whole_relative_error`); None when
            every exact gradient is zero.
    """
    layers: Dict[str, float]
    whole: Optional[float]


def autocast_gradient_errors(model: nn.Module, layers: Dict[str, nn.Module],
                             loss: Callable[[], torch.Tensor],
                             autocast: Callable[[], AbstractContextManager]
                             ) -> AutocastGradientError:
    """Each layer's relative weight-gradient error under autocast, and the
    layers' together.

    Both backwards start from the same gradients, buffers, random state
    and warm starts, and all of these are put back afterwards, so training
    goes on as it would without the measurement.

    Args:
        model: The model in training (the layers trainable).
        layers: The layers to compare, by name (modules with a ``weight``).
        loss: Runs the training forward on one batch and returns the
            scalar loss.
        autocast: Returns the context the training forward runs in (e.g.
            the optimizer wrapper's ``optim_context``).

    Returns:
        The errors by layer and of the layers together.

    Raises:
        ValueError: For a layer the backward gives no weight gradient.
    """
    exact = _weight_grads(model, layers, loss, torch.enable_grad)
    mixed = _weight_grads(model, layers, loss, autocast)
    errors, norms = {}, {}
    for name, grad in exact.items():
        norms[name] = float(grad.norm())
        errors[name] = (float((mixed[name] - grad).norm() / norms[name])
                        if norms[name] > 0 else 0.0)
    return AutocastGradientError(errors, whole_relative_error(
        (errors[name], norms[name]) for name in errors))
