"""How long a chain of training and test processes has left, from its logs.

``tools/demo.py`` runs its stages as ``tools/train.py`` processes (those
that test their checkpoint do it in the same process). Each stage costs a
number of *reference steps* (one full training step of DeepLabV3-R18-d8,
batch 8, 128 x 128, everything trainable), known from a measurement on the
project's machine; the training log lines of a running stage say how many
seconds its steps take on this machine. From the latest such measurement,
:class:`TimeLeft` scales every stage still to run.
"""
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

_ITER = re.compile(r'Iter\(train\)\s*\[\s*(\d+)\s*/\s*(\d+)\s*\]')
# 'time:' but not 'data_time:'
_TIME = re.compile(r'(?<![A-Za-z_])time:\s*([0-9]+(?:\.[0-9]*)?)')


def parse_train_line(
        line: str) -> Optional[Tuple[int, int, Optional[float]]]:
    """The progress that an MMEngine training log line reports.

    Args:
        line: One line of a training log, e.g. ``Iter(train) [ 20/400]  lr:
            1.0000e-02  eta: 0:05:51  time: 0.6110  data_time: 0.0103 ...``.

    Returns:
        (iteration, max_iters, seconds per iteration), the seconds None when
        the line has no ``time:`` field; None for any other line.
    """
    found = _ITER.search(line)
    if found is None:
        return None
    seconds = _TIME.search(line, found.end())
    return (int(found.group(1)), int(found.group(2)),
            float(seconds.group(1)) if seconds else None)


@dataclass
class Stage:
    """One process of the chain, with its cost in reference steps.

    Attributes:
        name: Shown in the estimate ('pretrain', 'fine-tune', ...).
        steps: Its training iterations; 1 for a test.
        step_cost: One of its steps, in reference steps.
        overhead: Start-up of its process, in reference steps; counted
            until its first step is logged.
        closing: What runs after its last step (validation, a test in
            the same process, checkpoints), in reference steps; counted
            until the stage finishes.
    """
    name: str
    steps: int
    step_cost: float
    overhead: float = 0.
    closing: float = 0.


class TimeLeft:
    """Time left per stage, from the step times measured so far.

    Args:
        stages: The stages still to run, in order; names must differ.

    Raises:
        ValueError: For repeated names or a non-positive step count or
            cost.
    """

    def __init__(self, stages: List[Stage]):
        names = [stage.name for stage in stages]
        if len(set(names)) != len(names):
            raise ValueError(f'stage names must differ, got {names}')
        for stage in stages:
            if (stage.steps < 1 or stage.step_cost <= 0
                    or stage.overhead < 0 or stage.closing < 0):
                raise ValueError(
                    f'stage {stage.name!r} needs steps >= 1, step_cost > 0 '
                    f'and overhead, closing >= 0, got {stage}')
        self.stages = {stage.name: stage for stage in stages}
        self.done: Dict[str, int] = {name: 0 for name in names}
        self.started: Dict[str, bool] = {name: False for name in names}
        self.finished: Dict[str, bool] = {name: False for name in names}
        #: Seconds per reference step; None until a step time is measured.
        self.reference_seconds: Optional[float] = None

    def observe(self, name: str, iteration: int,
                seconds_per_step: Optional[float]) -> None:
        """Records a progress line of stage ``name``.

        Args:
            name: A stage name.
            iteration: The iteration the line reports.
            seconds_per_step: Its measured seconds per iteration, or None.

        Raises:
            KeyError: For an unknown stage name.
        """
        if name not in self.stages:
            raise KeyError(f'unknown stage {name!r}; stages: '
                           f'{list(self.stages)}')
        stage = self.stages[name]
        self.started[name] = True
        self.done[name] = min(iteration, stage.steps)
        if seconds_per_step is not None and seconds_per_step > 0:
            self.reference_seconds = seconds_per_step / stage.step_cost

    def finish(self, name: str) -> None:
        """Marks stage ``name`` done (finished, or skipped as done before).

        Raises:
            KeyError: For an unknown stage name.
        """
        if name not in self.stages:
            raise KeyError(f'unknown stage {name!r}; stages: '
                           f'{list(self.stages)}')
        self.finished[name] = True

    def left(self) -> Optional[Dict[str, float]]:
        """Seconds left per unfinished stage; None before any measurement."""
        if self.reference_seconds is None:
            return None
        left = {}
        for name, stage in self.stages.items():
            if self.finished[name]:
                continue
            cost = ((stage.steps - self.done[name]) * stage.step_cost
                    + stage.closing)
            if not self.started[name]:
                cost += stage.overhead
            left[name] = cost * self.reference_seconds
        return left

    def summary(self) -> Optional[str]:
        """One line: minutes left per stage and in total (None if unknown)."""
        left = self.left()
        if left is None:
            return None
        parts = ', '.join(f'{name} {seconds / 60:.1f}'
                          for name, seconds in left.items())
        return (f'time left, estimated from the measured step times: '
                f'{sum(left.values()) / 60:.1f} min ({parts} min)')


class ProgressLog:
    """A ``log`` callback that shows the time left once per stage.

    It passes every message on to ``write``, feeds the training progress
    lines of the current stage (see :meth:`stage`) to ``time_left`` and,
    after the first one of each stage that carries a step time, writes
    ``time_left.summary()``.

    Args:
        time_left: The estimator of the chain.
        write: Receives the messages and the estimates.
    """

    def __init__(self, time_left: TimeLeft, write: Callable[[str], None]):
        self.time_left = time_left
        self.write = write
        self.current: Optional[str] = None
        self._reported = set()

    def stage(self, name: Optional[str]) -> None:
        """Finishes the current stage and makes ``name`` the current one.

        A name the estimator does not know (a stage done before, not
        planned) or None follows no stage until the next call.
        """
        if self.current is not None:
            self.time_left.finish(self.current)
        self.current = name if name in self.time_left.stages else None

    def __call__(self, message: str) -> None:
        self.write(message)
        progress = parse_train_line(message)
        if progress is None or self.current is None:
            return
        iteration, _, seconds = progress
        self.time_left.observe(self.current, iteration, seconds)
        if seconds is not None and self.current not in self._reported:
            self._reported.add(self.current)
            self.write(self.time_left.summary())
