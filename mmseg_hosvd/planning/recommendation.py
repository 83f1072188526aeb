"""Which measured set-up to use within a memory budget."""
from dataclasses import dataclass
from typing import List, Optional, Sequence


@dataclass(frozen=True)
class Measured:
    """What a short real run of one set-up measured.

    Attributes:
        name: The set-up's name.
        exact: Whether its gradients are vanilla's.
        peak_mb: Its whole-step peak memory (the most live at once during a
            training step over what was live before it).
        step_s: Median seconds of a training step after the profiled one.
        error: Relative weight-gradient error of its fine-tuned layers'
            gradients taken as one vector, ``||dW - dW_hat|| / ||dW||``
            on the measured batch (0 for an exact set-up; None when not
            measured).
    """
    name: str
    exact: bool
    peak_mb: float
    step_s: float
    error: Optional[float]


def fits(measured: Measured, budget_mb: float) -> bool:
    """Whether ``measured``'s whole-step peak is within the budget."""
    return measured.peak_mb <= budget_mb


def recommend(measurements: Sequence[Measured], budget_mb: float,
              time_factor: float = 2.0) -> Measured:
    """The set-up to use within ``budget_mb``.

    Only set-ups that fit and whose step takes at most ``time_factor``
    times the fastest fitting set-up's are considered (the fastest always
    is). Exact ones come first: the fastest of them. Otherwise the one
    with the least gradient error (then the faster; one whose error was
    not measured comes last).

    Args:
        measurements: Every measured set-up.
        budget_mb: The memory budget (MB) for the whole-step peak.
        time_factor: How much slower than the fastest fitting set-up an
            exact one may be and still come first.

    Raises:
        ValueError: For a budget below every set-up's peak (naming the
            smallest peak and its set-up), a budget or factor out of range,
            or no measurements.
    """
    if not measurements:
        raise ValueError('no set-ups were measured')
    if not budget_mb > 0:
        raise ValueError(f'budget_mb must be > 0, got {budget_mb!r}')
    if not time_factor >= 1:
        raise ValueError(f'time_factor must be >= 1, got {time_factor!r}')
    fitting: List[Measured] = [m for m in measurements if fits(m, budget_mb)]
    if not fitting:
        least = min(measurements, key=lambda m: m.peak_mb)
        raise ValueError(
            f'no set-up fits {budget_mb:g} MB: the smallest measured '
            f'whole-step peak is {least.peak_mb:.1f} MB ({least.name})')
    fastest = min(m.step_s for m in fitting)
    timely = [m for m in fitting if m.step_s <= time_factor * fastest]
    exact = [m for m in timely if m.exact]
    if exact:
        return min(exact, key=lambda m: (m.step_s, m.peak_mb))
    return min(timely, key=lambda m: (m.error is None, m.error or 0.0,
                                      m.step_s))
