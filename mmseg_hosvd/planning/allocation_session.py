"""Choosing each layer's setting by gradient error while training starts.

A method with a per-layer setting (``hosvd``'s eps, ``quantized``'s bits)
and the option ``allocate`` runs its first ``allocate.batches`` labelled
batches through one extra forward and backward each, which keep every
compressed layer's input and output gradient
(:func:`~.layer_capture.capture_layer_gradients`). Every value of the
grid (for ``hosvd`` with ``allocate.spatial_grid``, every pair of an eps
and a spatial eps) is then measured on every layer
(:func:`~.gradient_error.gradient_errors`), and
:func:`~.allocation.allocate` picks one value per layer (one per
shared-input group) with the least summed weight-gradient
error (each layer's relative error, or with ``criterion='whole'`` the
squared error of the whole gradient) whose stored bytes fit the budget:
``budget_mb``, or the bytes that ``budget_of`` set on every layer stores
on the same batches (for ``hosvd`` with ``keep_batch``, the bytes of the
paper's HOSVD at that eps, measured beside the grid; where no grid value
fits those bytes, that setting joins the choices, so the allocation always
fits, and the layers that take it are logged as a warning). The choice is
set on the layers, logged, kept in the plan (``allocated``, with the
chosen settings' summed relative error ``allocation_relative_error`` and
their whole gradient's ``allocation_whole_error``, from the means over
the measured batches when there are several) and in MessageHub,
so a resumed run takes it instead of measuring again. The measurement
puts back the random state, the gradients, the buffers (a
norm in training mode updates its statistics) and the randomized solvers'
warm starts (:func:`~mmseg_hosvd.utils.untouched_training.training_untouched`),
so training draws, normalises and steps as it would without it.
"""
from typing import Any, Dict, List, Optional, Tuple

from mmengine.logging import MessageHub
from torch import nn

from ..methods import FinetuneMethod, MethodSession
from ..utils.untouched_training import training_untouched
from .allocation import allocate, criterion_errors, uniform_bytes
from .batch_loss import batch_loss
from .gradient_error import Candidate, gradient_errors, whole_relative_error
from .layer_capture import capture_layer_gradients, merge_captures

#: MessageHub runtime-info key of the allocated settings (kept on resume).
ALLOCATED_KEY = 'allocated_settings'
MB = 2**20


class GradientAllocationSession(MethodSession):
    """Measures the gradient error of the grid on the first labelled
    batches and sets each layer's allocated value.

    Args:
        method: The method (its :attr:`~.FinetuneMethod.per_layer` option
            is the one allocated, with its
            :attr:`~.FinetuneMethod.paired` option where ``allocate`` gives
            that one's grid).
        plan: The fine-tuning plan; its options hold ``allocate``, its
            results get ``allocated``, ``allocated_mb`` and
            ``allocation_budget_mb``.
    """

    def __init__(self, method: FinetuneMethod, plan):
        self.method = method
        self.plan = plan
        self.allocation = plan.options['allocate']
        self.settings: Optional[Dict[str, Any]] = None
        self._captures = []

    def before_train(self, runner, model: nn.Module) -> None:
        """Takes the settings a resumed run had allocated (MessageHub)."""
        resumed = MessageHub.get_current_instance().get_info(
            ALLOCATED_KEY, None)
        if resumed:
            self.set_settings(model, dict(resumed))
            chosen = self.method.allocated_settings(self.allocation)
            runner.logger.info(
                f'allocation: resumed {chosen} per layer {resumed}')

    def before_train_iter(self, runner, model: nn.Module,
                          data_batch=None) -> None:
        """Measures on the batch until the settings are allocated."""
        if self.settings is None:
            self.calibrate(model, None, runner.logger, data_batch)

    def set_settings(self, model: nn.Module, settings: Dict[str,
                                                           Any]) -> None:
        """Sets each layer's value on its module and in the plan."""
        for name, value in settings.items():
            self.method.set_layer_setting(model.get_submodule(name), value)
        self.settings = settings
        self.plan.results['allocated'] = settings

    def grid(self) -> List[Tuple[Any, str]]:
        """The values to choose from per layer and their candidates' tags:
        each value of ``allocate.grid`` (tag e.g. 'eps=0.8'), or with the
        method's paired grid every pair, as a dict (e.g.
        ``dict(eps=0.7, spatial_eps=0.9)``, tag 'eps=0.7,spatial_eps=0.9').
        """
        setting = self.method.per_layer
        second = self.method.paired_grid(self.allocation)
        if not second:
            return [(v, f'{setting}={v:g}') for v in self.allocation['grid']]
        option = self.method.paired.option
        return [({setting: v, option: w}, f'{setting}={v:g},{option}={w:g}')
                for v in self.allocation['grid'] for w in second]

    def candidates(self) -> List[Candidate]:
        """The grid as candidates: the run's options, each value of
        :meth:`grid` set on every layer, named by its tag."""
        base = {k: v for k, v in self.plan.options.items()
                if k != 'allocate'}
        setting = self.method.per_layer
        return [
            Candidate(self.method.name, {
                **base, **(value if isinstance(value, dict) else {
                    setting: value})
            }, tag) for value, tag in self.grid()
        ]

    def _uniform_tag(self, budget_of) -> str:
        """The grid's tag of ``budget_of`` on every layer (with a paired
        grid, both settings at ``budget_of``)."""
        second = self.method.paired_grid(self.allocation)
        uniform = ({self.method.per_layer: budget_of,
                    self.method.paired.option: budget_of}
                   if second else budget_of)
        return next(tag for value, tag in self.grid() if value == uniform)

    def budget_candidate(self) -> Optional[Candidate]:
        """The setting whose bytes ``budget_of`` means, where the method
        measures it with other options than the grid's (``hosvd`` with
        ``keep_batch``: the paper's HOSVD at that eps); None where it is
        the grid's own candidate, or the budget is in MB."""
        budget_of = self.allocation['budget_of']
        base = {k: v for k, v in self.plan.options.items()
                if k != 'allocate'}
        reference = self.method.budget_options(base)
        if budget_of is None or reference == base:
            return None
        setting = self.method.per_layer
        return Candidate(self.method.name, {**reference, setting: budget_of},
                         f'budget: {setting}={budget_of:g}')

    def _warn_fallback(self, logger, reference: Candidate, chosen) -> None:
        """Says which layers took the budget's own setting because no grid
        value fitted the budget with the run's options."""
        if logger is None:
            return
        given = ', '.join(
            f'{key}={value!r}' for key, value in self.plan.options.items()
            if key in reference.options and value != reference.options[key]
            and key != self.method.per_layer)
        fallen = [name for name, c in chosen.choices.items()
                  if c.tag == reference.tag]
        logger.warning(
            f'allocation: no choice with {given} fits the budget (what '
            f'{self.method.name} stores without it at '
            f"{self.method.per_layer} {self.allocation['budget_of']:g}); "
            f'{fallen} take that setting instead')

    def calibrate(self, model: nn.Module, inputs, logger=None,
                  data_batch=None) -> bool:
        """Adds one labelled batch; allocates when enough are measured.

        Args:
            model: The converted (unwrapped) segmentor, in training mode.
            inputs: Unused: the measurement needs labels.
            logger: Where the allocation is logged.
            data_batch: A loader batch (images and labels).

        Returns:
            Whether the settings are now allocated.

        Raises:
            ValueError: Without a labelled batch.
        """
        if data_batch is None:
            raise ValueError(
                f'{self.method.name} with allocate measures the weight-'
                'gradient error on labelled batches: pass data_batch (a '
                'loader batch), not images alone')
        with training_untouched(model):
            self._captures.append(
                capture_layer_gradients(model, self.plan.compressed,
                                        batch_loss(model, data_batch)))
        if len(self._captures) < self.allocation['batches']:
            return False
        candidates = self.candidates()
        value_of = {tag: value for value, tag in self.grid()}
        reference = self.budget_candidate()
        measured = candidates + ([reference] if reference else [])
        errors = gradient_errors(merge_captures(*self._captures), measured)
        self._captures = []
        groups = self.plan.shared_inputs
        budget_of = self.allocation['budget_of']
        budget = (self.allocation['budget_mb'] * MB if budget_of is None else
                  uniform_bytes(errors, reference.tag if reference else
                                self._uniform_tag(budget_of), groups))
        criterion = self.allocation['criterion']
        try:
            chosen = allocate(criterion_errors(
                [e for e in errors if e.tag in value_of], criterion), budget,
                              groups=groups)
        except ValueError:
            if reference is None:
                raise
            # the reference, set on every layer, stores the budget exactly
            chosen = allocate(criterion_errors(errors, criterion), budget,
                              groups=groups)
            value_of[reference.tag] = self.method.budget_setting(budget_of)
            self._warn_fallback(logger, reference, chosen)
        settings = {name: value_of[c.tag]
                    for name, c in chosen.choices.items()}
        self.set_settings(model, settings)
        self.plan.results['allocated_mb'] = chosen.stored_bytes / MB
        self.plan.results['allocation_error'] = chosen.error
        by_key = {(c.layer, c.tag): c for c in errors}
        picked = [by_key[name, c.tag] for name, c in chosen.choices.items()]
        self.plan.results['allocation_relative_error'] = sum(
            c.error for c in picked)
        whole = whole_relative_error((c.error, c.gradient_norm)
                                     for c in picked)
        self.plan.results['allocation_whole_error'] = whole
        self.plan.results['allocation_budget_mb'] = budget / MB
        MessageHub.get_current_instance().update_info(ALLOCATED_KEY,
                                                      settings)
        if logger is not None:
            chosen_names = self.method.allocated_settings(self.allocation)
            logger.info(
                f'allocation: {chosen_names} per layer by weight-'
                f"gradient error on {self.allocation['batches']} batch(es), "
                f'criterion {criterion}, summed error {chosen.error:.4g} '
                '(relative error of the whole gradient '
                f"{'-' if whole is None else f'{whole:.4g}'}), "
                'storing '
                f'{chosen.stored_bytes / MB:.4f} of {budget / MB:.4f} MB: '
                f'{settings}')
        return True
