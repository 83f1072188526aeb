"""Record the whole-step peak memory of one training iteration."""
from typing import Optional

from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ...ops.checks import check_int_at_least
from ...utils.step_memory import StepMarks, start_profiler, step_peaks
from .unwrap import unwrap_model

#: MessageHub runtime-info key and checkpoint-meta key of the record.
STEP_PEAK_KEY = 'step_peak_memory'


@HOOKS.register_module()
class StepPeakMemoryHook(Hook):
    """Profiles one training iteration for its whole-step peak memory.

    The most memory live at any moment of the step (data preprocessor,
    forward, loss, backward, optimizer) over what was live before it, from
    PyTorch's allocation events, and the same per phase (see
    :mod:`mmseg_hosvd.utils.step_memory`). Only iteration ``iteration`` is
    profiled (profiling with stacks slows that step down several times);
    the record is logged, kept in MessageHub and written to the
    checkpoints' meta as ``step_peak_memory``, where ``tools/test.py`` and
    ``compare.py`` read it.

    Args:
        iteration: The (1-based) training iteration to profile; later than
            the first, whose optimizer state is still being created.
    """

    priority = 'VERY_HIGH'

    def __init__(self, iteration: int = 10):
        self.iteration = check_int_at_least('iteration', iteration, 2)
        self.record: Optional[dict] = None
        self._profiler = None
        self._marks = None

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        """Starts profiling when the chosen iteration begins."""
        if runner.iter + 1 != self.iteration:
            return
        model = unwrap_model(runner.model)
        self._marks = StepMarks(model, runner.optim_wrapper.optimizer)
        self._profiler = start_profiler(next(model.parameters()).device)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        """Stops profiling and records the step's peaks."""
        if self._profiler is None:
            return
        device = next(unwrap_model(runner.model).parameters()).device
        self.record = dict(step_peaks(self._stop(), device),
                           iteration=self.iteration)
        runner.message_hub.update_info(STEP_PEAK_KEY, self.record)
        phases = self.record['phase_peaks_mb']
        runner.logger.info(
            'whole-step peak memory (MB over the step\'s start): '
            f"{self.record['peak_increment_mb']:.1f}; by phase: " +
            ', '.join(f'{k} {v:.1f}' for k, v in phases.items()))

    def _stop(self):
        """Stops the profiler and the marks; returns the profiler."""
        profiler, self._profiler = self._profiler, None
        profiler.__exit__(None, None, None)
        self._marks.remove()
        self._marks = None
        return profiler

    def after_train(self, runner) -> None:
        """Stops a profiler left running by a step that raised."""
        if self._profiler is not None:
            self._stop()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Writes the record (once measured) to the checkpoint's meta."""
        record = self.record or runner.message_hub.get_info(STEP_PEAK_KEY)
        if record:
            checkpoint.setdefault('meta', {})[STEP_PEAK_KEY] = record
