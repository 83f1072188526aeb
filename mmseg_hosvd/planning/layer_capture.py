"""What one backward gives each fine-tuned layer: its input and the
gradient of its output, the two things a weight gradient is made of
(:mod:`.gradient_error` measures compressed settings on them)."""
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Sequence

import torch
from torch import nn


@dataclass
class LayerGradients:
    """What one backward gave a layer: its input and its output gradient.

    Attributes:
        name: The layer's name in the model.
        layer: The layer (an ``nn.Conv2d`` or ``nn.Linear``, compressed or
            not).
        inputs: The input it read, one tensor per captured batch.
        grad_outputs: The gradient of its output, one per captured batch.
    """
    name: str
    layer: nn.Module
    inputs: List[torch.Tensor] = field(default_factory=list)
    grad_outputs: List[torch.Tensor] = field(default_factory=list)


def _check_layer(name: str, layer: nn.Module) -> None:
    if not isinstance(layer, (nn.Conv2d, nn.Linear)):
        raise ValueError(f'layer {name!r} is a {type(layer).__name__}; the '
                         'gradient error is measured for Conv2d and Linear '
                         'layers')


def capture_layer_gradients(model: nn.Module, names: Sequence[str],
                            loss_of: Callable[[], torch.Tensor]
                            ) -> Dict[str, LayerGradients]:
    """Runs one forward and backward and keeps each named layer's input
    and output gradient.

    For several batches, call it once per batch and join the results with
    :func:`merge_captures`.

    Args:
        model: The model, set up for fine-tuning (the named layers
            trainable).
        names: The layers to capture (``model.get_submodule`` names).
        loss_of: Runs the forward on a batch and returns the scalar loss;
            it is differentiated here.

    Returns:
        A :class:`LayerGradients` per name, with this batch.

    Raises:
        ValueError: For a name the model does not have, a layer that is
            neither Conv2d nor Linear, or one that the backward did not
            reach (its weight frozen, or its output unused).
    """
    captured = {}
    handles = []
    for name in names:
        try:
            layer = model.get_submodule(name)
        except AttributeError:
            raise ValueError(f'model has no layer {name!r}') from None
        _check_layer(name, layer)
        captured[name] = LayerGradients(name, layer)

        def keep(module, args, output, record=captured[name]):
            record.inputs.append(args[0].detach())
            if output.requires_grad:
                output.register_hook(
                    lambda grad: record.grad_outputs.append(grad.detach()))

        handles.append(layer.register_forward_hook(keep))
    try:
        loss_of().backward()
    finally:
        for handle in handles:
            handle.remove()
    for name, record in captured.items():
        if len(record.grad_outputs) != len(record.inputs) or not (
                record.inputs):
            raise ValueError(f'the backward did not reach layer {name!r} '
                             '(frozen, or its output unused)')
    return captured


def merge_captures(*captures: Dict[str, LayerGradients]
                   ) -> Dict[str, LayerGradients]:
    """The batches of several :func:`capture_layer_gradients` results,
    layer by layer."""
    merged: Dict[str, LayerGradients] = {}
    for capture in captures:
        for name, record in capture.items():
            into = merged.setdefault(name, LayerGradients(name, record.layer))
            into.inputs += record.inputs
            into.grad_outputs += record.grad_outputs
    return merged
