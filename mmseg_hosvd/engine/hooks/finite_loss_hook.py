"""Stop training when it diverges, before a checkpoint of it is saved."""
import math
import statistics
from collections import deque
from typing import Dict, NamedTuple, Optional

import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from .divergence_checkpoints import checkpoint_verdict

#: A loss this many times its running median (or more) is rising (see
#: :class:`FiniteLossHook`); in normal runs a few losses in a hundred are.
RISE = 2.


def _check_factor(name: str, value) -> Optional[float]:
    """A number > 1, or None (the check is off)."""
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not value > 1 or not math.isfinite(value)):
        raise ValueError(f'{name} must be a finite number > 1, or None to '
                         f'turn its check off, got {value!r}')
    return float(value)


def _check_count(name: str, value, low: int, high: float = math.inf) -> int:
    """An int in ``[low, high]``."""
    if (isinstance(value, bool) or not isinstance(value, int)
            or not low <= value <= high):
        bounds = f'>= {low}' if high == math.inf else f'in [{low}, {high}]'
        raise ValueError(f'{name} must be an int {bounds}, got {value!r}')
    return value


def _norm(param: torch.Tensor) -> float:
    """A parameter's norm: in float32, and again in float64 only when that
    is not finite (a float32 norm overflows for weights that are finite;
    float64 for every parameter would cost a copy of each per step)."""
    norm = float(torch.linalg.vector_norm(param.detach()))
    if math.isfinite(norm):
        return norm
    return float(param.detach().norm(dtype=torch.float64))


class Norms(NamedTuple):
    """Parameter norms now and at the start (see :class:`FiniteLossHook`).

    Attributes:
        now: Of every parameter, now.
        start: Of every parameter, at the start.
        trained_now: Of the trained parameters, now.
        trained_start: Of the trained parameters, at the start.
        bad: The first trained parameter that is not finite, or None.
    """
    now: float
    start: float
    trained_now: float
    trained_start: float
    bad: Optional[str]


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Stops training when it diverges, naming the checkpoint to keep.

    After every iteration (its priority runs it before MMEngine's
    ``CheckpointHook``, so the diverged weights are never saved) it stops
    the run with a ``FloatingPointError`` when:

    * the loss is NaN or Inf;
    * a trained parameter is NaN or Inf (a NaN gradient with a finite
      loss, as float32 LAPACK once gave, makes every trained parameter NaN
      through the grad-norm clip, and the loss shows it only at the next
      iteration);
    * the loss is more than ``loss_growth`` times its running median, once
      that is taken over ``min_history`` losses (a divergence that stays
      finite). The running median is that of the last ``window`` finite
      losses that were not *rising*, i.e. at least :data:`RISE` times the
      running median of their own iteration, so that the losses of a
      divergence under way do not raise it (a divergence from the first
      iterations, before there are ``min_history`` such losses, is left
      to the next check);
    * the norm of all the model's parameters, frozen ones included, is
      more than ``weight_growth`` times what it was before the first
      iteration (recorded then, after every hook's ``before_train``). Only
      the trained parameters change it; measured against the whole model,
      a freshly initialised classifier that grows from its small
      initialisation, as it should, does not count as exploding.

    The message names the iteration, the loss and its median, the norms
    and which checkpoint to keep. The divergence is taken to begin at the
    *onset*, the first iteration whose weights look diverged. An
    iteration's loss measures the weights that the iteration before it
    left, so when the stopping iteration's loss is rising (or not finite),
    the onset is the iteration before the first of the consecutive rising
    ones that end at the stop; otherwise (the weights exploded or turned
    NaN under a normal loss) it is the stopping iteration. It is read off
    the losses: one that rose by chance just before a divergence makes it
    earlier, a divergence whose first losses rise less than :data:`RISE`
    times makes it later. A checkpoint is called kept only when it was
    saved before the onset (see
    :func:`~.divergence_checkpoints.checkpoint_verdict`). The protocol's
    configs set it in ``default_hooks`` (key ``finite_loss``).

    The defaults come from real runs of the protocol's DeepLabV3 configs
    (pretraining from scratch, calibration, fine-tuning): the loss stayed
    within 2.4 times its running median, and the model's parameter norm
    within 0.97 and 1.00 times its start (the trained parameters' own
    norm grew up to 9.8 times, in a freshly initialised classifier). At lr
    1e3 fine-tuning stops at iteration 5 (parameter norm 13 times its
    start, loss 3e5 after 0.17 at the first iteration), at lr 1e6 at the
    first.

    Args:
        loss_growth: Factor over the running median of the loss at which
            the run stops; None turns this check off.
        window: How many recent losses (finite, not rising) the running
            median is taken over.
        min_history: How many losses the running median needs before the
            loss check applies (at most ``window``).
        weight_growth: Factor over the model's parameter norm at the start
            at which the run stops; None turns this check off.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self,
                 loss_growth: Optional[float] = 100.,
                 window: int = 20,
                 min_history: int = 5,
                 weight_growth: Optional[float] = 10.):
        self.loss_growth = _check_factor('loss_growth', loss_growth)
        self.window = _check_count('window', window, 1)
        self.min_history = _check_count(
            'min_history', min_history, 1, self.window)
        self.weight_growth = _check_factor('weight_growth', weight_growth)
        self._losses: deque = deque(maxlen=self.window)
        self._rising_since: Optional[int] = None
        self._start_norms: Optional[Dict[int, float]] = None

    def before_train(self, runner) -> None:
        """Forgets the losses and norms of an earlier run."""
        self._losses.clear()
        self._rising_since = None
        self._start_norms = None

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        """Records the parameters' norms before the first step."""
        if self._start_norms is None:
            self._start_norms = {
                id(p): _norm(p)
                for p in runner.model.parameters()
            }

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        """Checks the iteration's loss and the trained parameters.

        Args:
            runner: The runner.
            batch_idx: Index of the batch.
            data_batch: The batch.
            outputs: The train step's outputs, with ``loss``.

        Raises:
            FloatingPointError: When the run diverged (see the class
                docstring).
        """
        iteration = runner.iter + 1
        loss = (outputs or {}).get('loss')
        loss = None if loss is None else float(
            torch.as_tensor(loss).detach().float().mean())
        median = (statistics.median(self._losses)
                  if self._losses else None)
        # a ratio to the median means something only for positive losses
        positive = median is not None and median > 0
        rising = loss is not None and (not math.isfinite(loss) or (
            positive and loss >= RISE * median))
        if not rising:
            self._rising_since = None
        elif self._rising_since is None:
            self._rising_since = iteration
        norms = self._norms(runner)
        values = self._values(loss, median, norms)
        if loss is not None and not math.isfinite(loss):
            self._stop(runner, f'loss is {loss}', values)
        if norms.bad is not None:
            self._stop(runner, f'parameter {norms.bad} holds NaN or Inf after '
                       'the optimizer step (a gradient was not finite)',
                       values)
        if (self.loss_growth is not None and loss is not None and positive
                and len(self._losses) >= self.min_history
                and loss > self.loss_growth * median):
            self._stop(runner, f'the loss is {loss / median:.3g} times its '
                       f'running median (loss_growth={self.loss_growth:g})',
                       values)
        if (self.weight_growth is not None and norms.start > 0
                and norms.now > self.weight_growth * norms.start):
            self._stop(runner, 'the model\'s parameter norm is '
                       f'{norms.now / norms.start:.3g} times its start '
                       f'(weight_growth={self.weight_growth:g})', values)
        if loss is not None and not rising:
            self._losses.append(loss)

    def _norms(self, runner) -> Norms:
        """The parameters' norms now and at the start; only the trained
        ones are measured again."""
        if self._start_norms is None:  # before_train_iter did not run
            self._start_norms = {}
        squares = [0.] * 4  # now, start, trained now, trained start
        bad = None
        for name, param in runner.model.named_parameters():
            start = self._start_norms.setdefault(id(param), _norm(param))
            now = _norm(param) if param.requires_grad else start
            if param.requires_grad and not math.isfinite(now):
                bad = bad or name
            squares[0] += now * now
            squares[1] += start * start
            if param.requires_grad:
                squares[2] += now * now
                squares[3] += start * start
        return Norms(*map(math.sqrt, squares), bad)

    def _values(self, loss: Optional[float], median: Optional[float],
                norms: Norms) -> str:
        parts = [] if loss is None else [f'loss {loss:.4g}']
        if median is not None:
            parts.append(f'median {median:.4g} of the last '
                         f'{len(self._losses)} losses not rising')
        parts.append(f'parameter norm {norms.now:.4g}, {norms.start:.4g} at '
                     'the start; of the trained parameters '
                     f'{norms.trained_now:.4g}, {norms.trained_start:.4g} at '
                     'the start')
        return '; '.join(parts)

    def _stop(self, runner, what: str, values: str) -> None:
        iteration = runner.iter + 1
        onset = (iteration if self._rising_since is None else
                 self._rising_since - 1)
        raise FloatingPointError(
            f'{what} at iteration {iteration}: training diverged and '
            f'stopped ({values}); the divergence began with the weights of '
            f'iteration {onset}. ' +
            checkpoint_verdict(runner.work_dir, onset) +
            'Lower the learning rate, or raise eps for svd/hosvd.')
