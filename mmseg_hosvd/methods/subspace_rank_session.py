"""Fixing the ranks of subspace convolutions once, and keeping them.

The measurement's forward runs in training mode and puts back the random
state and the buffers it changed (dropout draws, a training-mode norm's
running statistics), so training goes on as it would without it.
"""
from typing import Dict, List, Optional

from mmengine.logging import MessageHub
from torch import nn

from ..selection.rank_calibration import choose_ranks, input_spectra
from ..utils.untouched_training import training_untouched
from .session import MethodSession

#: MessageHub runtime-info key of the fixed subspace ranks (kept on resume).
SUBSPACE_RANKS_KEY = 'subspace_ranks'


class SubspaceRankSession(MethodSession):
    """Measures the ranks on the first batches, or takes them on resume.

    Args:
        plan: The fine-tuning plan; its options give ``eps``,
            ``budget_mb`` and ``rank_batches`` (an allocation's eps per
            layer, when its results hold ``allocated``, replaces
            ``eps``), and its results get ``ranks`` and ``ranks_mb``.
    """

    def __init__(self, plan):
        self.plan = plan
        self.ranks: Optional[Dict[str, tuple]] = None
        self._spectra: List[dict] = []

    def before_train(self, runner, model: nn.Module) -> None:
        """Takes the ranks a resumed run had fixed (from MessageHub)."""
        resumed = MessageHub.get_current_instance().get_info(
            SUBSPACE_RANKS_KEY, None)
        if resumed:
            self.set_ranks(model, {n: tuple(r) for n, r in resumed.items()})
            runner.logger.info(f'subspace: resumed ranks {resumed}')

    def before_train_iter(self, runner, model: nn.Module,
                          data_batch=None) -> None:
        """Adds the batch to the measurement until the ranks are fixed."""
        if self.ranks is None:
            inputs = model.data_preprocessor(data_batch, True)['inputs']
            self.calibrate(model, inputs, runner.logger)

    def set_ranks(self, model: nn.Module, ranks: Dict[str, tuple]) -> None:
        """Fixes ``ranks`` on the named convolutions and in the plan."""
        for name, value in ranks.items():
            model.get_submodule(name).set_ranks(value)
        self.ranks = ranks
        self.plan.results['ranks'] = ranks

    def calibrate(self, model: nn.Module, inputs, logger=None) -> bool:
        """Adds one batch to the rank measurement; fixes ranks when enough.

        Args:
            model: The converted (unwrapped) segmentor.
            inputs: A preprocessed image batch.
            logger: Where the chosen ranks are logged.

        Returns:
            Whether the ranks are now fixed.
        """
        options = self.plan.options
        names = self.plan.compressed
        with training_untouched(model):
            self._spectra.append(input_spectra(model, names, inputs))
        if len(self._spectra) < options['rank_batches']:
            return False
        merged = {
            name: (self._spectra[-1][name][0], [
                sum(s[name][1][mode] for s in self._spectra)
                for mode in range(len(self._spectra[-1][name][1]))
            ])
            for name in names
        }
        eps = self.plan.results.get('allocated') or options['eps']
        ranks, used_mb = choose_ranks(merged, self.plan.shared_inputs, eps,
                                      options['budget_mb'])
        self.set_ranks(model, ranks)
        self._spectra = []
        self.plan.results['ranks_mb'] = used_mb
        MessageHub.get_current_instance().update_info(
            SUBSPACE_RANKS_KEY, {n: list(r)
                                 for n, r in ranks.items()})
        if logger is not None:
            source = (f"budget {options['budget_mb']} MB"
                      if options['budget_mb'] is not None else
                      f'eps {eps}')
            logger.info(
                f'subspace: ranks from {source} on '
                f"{options['rank_batches']} batch(es), storing "
                f'{used_mb:.4f} MB: {ranks}')
        return True

    #: The calibration under its earlier name.
    measure = calibrate
