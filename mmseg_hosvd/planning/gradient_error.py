"""How far a compressed layer's weight gradient is from the exact one.

Fine-tuning uses only the weight gradient of each fine-tuned layer, and a
compressed layer changes only that: its output and input gradient are
exact. So the relative error ``||dW - dW_hat|| / ||dW||`` of the weight
gradient, for the same input and the same upstream gradient, says what a
setting costs a layer. One backward of the real model on a real batch gives
each layer's input and the gradient of its output
(:func:`~.layer_capture.capture_layer_gradients`); each candidate's
``dW_hat`` is then one forward and one backward of that layer alone
(:func:`candidate_error`), through the very module training would use, so
what is measured is what training computes.
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
from ..ops.shared_solves import shared_mode_solves
from .layer_capture import LayerGradients


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


def exact_weight_gradients(record: LayerGradients) -> List[torch.Tensor]:
    """The exact weight gradient of a captured layer on each batch.

    Args:
        record: A layer's captured batches.

    Returns:
        One gradient per batch, through the plain ``nn.Conv2d`` or
        ``nn.Linear`` forward of a copy of the layer.
    """
    plain = copy.deepcopy(record.layer)
    plain.weight.requires_grad_(True)
    forward = _plain_forward(record.layer)
    return [
        _weight_grad(plain, forward, x, grad_output) for x, grad_output in
        zip(record.inputs, record.grad_outputs, strict=True)
    ]


def candidate_error(record: LayerGradients,
                    candidate: Candidate,
                    exact: Optional[Sequence[torch.Tensor]] = None
                    ) -> CandidateError:
    """The weight-gradient error of ``candidate`` on a captured layer, and
    the norm of the exact gradient.

    Args:
        record: A layer's captured batches.
        candidate: The setting to measure.
        exact: The layer's :func:`exact_weight_gradients`, when already
            computed (they are the same for every candidate).

    Returns:
        The mean relative error over the batches, the mean bytes stored
        and the mean exact gradient norm.

    Raises:
        ValueError: For a method that does not compress, or a layer whose
            exact gradient is zero on every batch.
    """
    twin = _twin(record.layer, candidate)
    if exact is None:
        exact = exact_weight_gradients(record)
    errors, stored, norms = [], [], []
    for x, grad_output, exact_grad in zip(record.inputs, record.grad_outputs,
                                          exact, strict=True):
        approximate = _weight_grad(twin, type(twin).__call__, x, grad_output)
        error = relative_error(exact_grad, approximate)
        if error is not None:
            errors.append(error)
            norms.append(float(torch.linalg.vector_norm(exact_grad.double())))
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
    layer by layer in capture order.

    Each layer's exact gradients are computed once, and its candidates
    share their decompositions' cold solves
    (:func:`~mmseg_hosvd.ops.shared_solves.shared_mode_solves`: an eps
    grid paired with a spatial eps grid solves the channel mode once per
    eps, not once per pair); the errors are those each candidate alone
    gives.
    """
    errors = []
    for record in captured.values():
        exact = exact_weight_gradients(record)
        with shared_mode_solves():
            errors += [candidate_error(record, candidate, exact)
                       for candidate in candidates]
    return errors
