"""How far a compressed layer's weight gradient is from the exact one.

Fine-tuning uses only the weight gradient of each fine-tuned layer, and a
compressed layer changes only that: its output and input gradient are
exact. So the relative error ``||dW - dW_hat|| / ||dW||`` of the weight
gradient, for the same input and the same upstream gradient, says what a
setting costs a layer. One backward of the real model on a real batch gives
each layer's input and the gradient of its output
(:func:`capture_layer_gradients`); each candidate's ``dW_hat`` is then one
forward and one backward of that layer alone (:func:`candidate_error`),
through the very module training would use, so what is measured is what
training computes.
"""
import copy
import math
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Optional,
    Sequence,
    Tuple,
)

import torch
from torch import nn

from ..layers.compressed_layer import CompressedLayer
from ..methods import get_method


@dataclass(frozen=True)
class Candidate:
    """One compressed setting of a layer.

    Attributes:
        method: A registered method that compresses (e.g. 'hosvd').
        options: Its options (e.g. ``dict(eps=0.8)``); the method's
            defaults fill in the rest.
        name: What the results call it; None for the tag of the options
            (which for some methods, such as 'hosvd-subspace', does not
            tell eps values apart).
    """
    method: str
    options: Dict[str, Any] = field(default_factory=dict)
    name: Optional[str] = None

    @property
    def tag(self) -> str:
        """The setting's name, or its tag as in config names (e.g.
        'hosvd-eps0.8')."""
        if self.name is not None:
            return self.name
        spec = get_method(self.method)
        return spec.tag(spec.check_options(self.options))


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


@dataclass(frozen=True)
class CandidateError:
    """The gradient error of one candidate on one layer.

    Attributes:
        layer: The layer's name.
        tag: The candidate's tag.
        error: Mean over the captured batches of
            ``||dW - dW_hat|| / ||dW||`` (Frobenius norms).
        stored_bytes: Mean analytical bytes the candidate stored for
            backward (elements times 4, as ``ActivationMemoryHook``
            counts).
        gradient_norm: Mean over the same batches of the exact ``||dW||``
            (None where not measured).
    """
    layer: str
    tag: str
    error: float
    stored_bytes: float
    gradient_norm: Optional[float] = None


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


def _plain_forward(layer: nn.Module) -> Callable:
    return nn.Conv2d.forward if isinstance(layer,
                                           nn.Conv2d) else nn.Linear.forward


def _weight_grad(module: nn.Module, forward: Callable, x: torch.Tensor,
                 grad_output: torch.Tensor) -> torch.Tensor:
    with torch.enable_grad():
        out = forward(module, x)
        return torch.autograd.grad(out, module.weight, grad_output)[0]


def _twin(layer: nn.Module, candidate: Candidate) -> CompressedLayer:
    """The candidate's module for a copy of ``layer``, in training mode
    with a trainable weight (so that it stores what training stores)."""
    plain = copy.deepcopy(layer)
    plain.weight.requires_grad_(True)
    spec = get_method(candidate.method)
    if spec.module_for('', plain) is None:
        raise ValueError(f'method {candidate.method!r} does not compress; '
                         'its gradient is exact')
    options = spec.check_options(candidate.options)
    return spec.build('', plain, options, {}).train()


def relative_error(exact: torch.Tensor, approximate: torch.Tensor
                   ) -> Optional[float]:
    """``||exact - approximate|| / ||exact||``, or None when ``exact`` is
    zero (a layer without gradient has no relative error)."""
    norm = torch.linalg.vector_norm(exact.double())
    if norm == 0:
        return None
    difference = torch.linalg.vector_norm((exact - approximate).double())
    return float(difference / norm)


def whole_relative_error(parts: Iterable[Tuple[float, float]]
                         ) -> Optional[float]:
    """The relative error of several layers' weight gradients taken as one
    vector, ``||dW - dW_hat|| / ||dW||`` over all of them, from each
    layer's relative error and exact gradient norm: the square root of
    ``sum (error * norm)^2 / sum norm^2``. A layer counts by its
    gradient's size, as in the step the optimizer takes. Exact for one
    batch; from :func:`candidate_error`'s means over several batches, an
    approximation of the batches' own errors.

    Args:
        parts: ``(relative error, exact gradient norm)`` per layer.

    Returns:
        The whole gradient's relative error; None when every norm is 0 or
        there are no parts.
    """
    squared_error = squared_norm = 0.0
    for error, norm in parts:
        squared_error += (error * norm)**2
        squared_norm += norm**2
    if squared_norm == 0:
        return None
    return math.sqrt(squared_error / squared_norm)


def candidate_error(record: LayerGradients,
                    candidate: Candidate) -> CandidateError:
    """The weight-gradient error of ``candidate`` on a captured layer, and
    the norm of the exact gradient.

    Args:
        record: A layer's captured batches.
        candidate: The setting to measure.

    Returns:
        The mean relative error over the batches, the mean bytes stored
        and the mean exact gradient norm.

    Raises:
        ValueError: For a method that does not compress, or a layer whose
            exact gradient is zero on every batch.
    """
    twin = _twin(record.layer, candidate)
    plain = _plain_forward(record.layer)
    errors, stored, norms = [], [], []
    for x, grad_output in zip(record.inputs, record.grad_outputs,
                              strict=True):
        exact = _weight_grad(twin, plain, x, grad_output)
        approximate = _weight_grad(twin, type(twin).__call__, x, grad_output)
        error = relative_error(exact, approximate)
        if error is not None:
            errors.append(error)
            norms.append(float(torch.linalg.vector_norm(exact.double())))
        stored.append(twin.last_stored.bytes)
    if not errors:
        raise ValueError(f'layer {record.name!r} has a zero weight gradient '
                         'on every captured batch')
    return CandidateError(record.name, candidate.tag,
                          sum(errors) / len(errors),
                          sum(stored) / len(stored),
                          sum(norms) / len(norms))


def gradient_errors(captured: Dict[str, LayerGradients],
                    candidates: Sequence[Candidate]
                    ) -> List[CandidateError]:
    """:func:`candidate_error` of every candidate on every captured layer,
    layer by layer in capture order."""
    return [candidate_error(record, candidate)
            for record in captured.values() for candidate in candidates]
