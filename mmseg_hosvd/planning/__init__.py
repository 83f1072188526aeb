"""Choosing a fine-tuning set-up from measurements: the weight-gradient
error of compressed settings, per layer, and one setting per layer that
fits a byte budget with the least error."""
from .allocation import (
    Allocation,
    allocate,
    criterion_errors,
    uniform_bytes,
)
from .gradient_error import (
    Candidate,
    CandidateError,
    candidate_error,
    exact_weight_gradients,
    gradient_errors,
    relative_error,
    whole_relative_error,
)
from .layer_capture import (
    LayerGradients,
    capture_layer_gradients,
    merge_captures,
)

__all__ = [
    'Allocation', 'Candidate', 'CandidateError', 'LayerGradients',
    'allocate', 'candidate_error', 'capture_layer_gradients',
    'criterion_errors', 'exact_weight_gradients',
    'gradient_errors', 'merge_captures', 'relative_error', 'uniform_bytes',
    'whole_relative_error'
]
