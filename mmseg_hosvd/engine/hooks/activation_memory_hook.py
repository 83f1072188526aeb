"""Logs the activation memory of every training iteration."""
import functools
import json
import os.path as osp
from typing import Dict, List

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmseg.registry import HOOKS

from ...selection.conv_memory_counter import ConvMemoryCounter
from ...utils import SavedTensorMeter
from .compress_conv_hook import FINETUNED_CONVS_KEY
from .unwrap import unwrap_model

MB = 2**20
#: Keys of the per-iteration scalars pushed to MessageHub.
ANALYTICAL_KEY = 'train/act_mem_analytical_mb'
MEASURED_KEY = 'train/act_mem_measured_mb'
CUDA_KEY = 'train/cuda_max_alloc_mb'
#: MessageHub runtime-info key of the per-iteration history; MessageHub state
#: is saved with checkpoints and restored on resume, so the summary covers
#: the whole training, not only the iterations since the last resume.
HISTORY_KEY = 'activation_memory_history'


def summarize(values: List[float]) -> Dict[str, float]:
    """Peak and mean of a list (zeros when empty)."""
    if not values:
        return dict(peak=0.0, mean=0.0)
    return dict(peak=max(values), mean=sum(values) / len(values))


@HOOKS.register_module()
class ActivationMemoryHook(Hook):
    """Analytical and measured activation memory per training iteration.

    * **analytical** (the paper's number): elements stored by each
      fine-tuned layer (convolution or Linear) for backward times 4 bytes,
      summed: the compressed form for compressed layers, the full input for
      plain (vanilla) ones. An input read by several fine-tuned layers
      (DeepLabV3's ASPP branches) counts once, for every method that stores
      it once; the paper counts it once per convolution.
    * **measured**: bytes of every distinct storage that autograd saves
      during the training step, parameters and buffers excluded; this
      includes what BatchNorm, ReLU, the classifier and the loss keep.
    * on CUDA also ``torch.cuda.max_memory_allocated`` of the iteration.

    An iteration that runs several ``train_step`` calls (gradient
    accumulation in whole steps, see
    :class:`~mmseg_hosvd.engine.SeededIterBasedTrainLoop`) stores one
    micro-batch at a time: it counts the most that one call stored.

    Each is pushed to MessageHub (so it shows in the log line and the
    visualizer backends); peak and mean over training go into every
    checkpoint's ``meta['activation_memory']`` and, at the end, into
    ``<work_dir>/<json_name>``.

    The fine-tuned layers are those that :class:`CompressConvHook`
    selected (it must run first, as its priority ensures).

    The meter wraps the model's ``train_step`` (forward, backward and
    optimizer step) from ``before_train`` to ``after_train``, so its
    saved-tensor hooks are removed however the step ends: a forward that
    raises, or a later hook that stops training (:class:`FiniteLossHook`),
    leaves no hooks on autograd.

    Args:
        json_name: File name of the summary in the work dir.
    """

    priority = 'NORMAL'

    def __init__(self, json_name: str = 'activation_memory.json'):
        self.json_name = json_name
        self.history: Dict[str, List[float]] = self._empty_history()
        self._counter = None
        self._meter = None
        self._metered = None
        self._step_bytes = [0, 0]
        self.layers: List[str] = []

    @staticmethod
    def _empty_history() -> Dict[str, List[float]]:
        return dict(analytical=[], measured=[], cuda=[])

    def before_train(self, runner) -> None:
        """Hooks the fine-tuned layers; takes a resumed history."""
        model = unwrap_model(runner.model)
        hub = MessageHub.get_current_instance()
        self.layers = list(hub.get_info(FINETUNED_CONVS_KEY, []) or [])
        self._counter = ConvMemoryCounter(model, self.layers)
        self._meter = SavedTensorMeter.for_model(model)
        self._meter_train_step(runner.model)
        resumed = hub.get_info(HISTORY_KEY, None)
        self.history = self._empty_history()
        if resumed:
            for key, values in resumed.items():
                self.history[key] = list(values)

    def _meter_train_step(self, model) -> None:
        """Runs every ``model.train_step`` inside the meter's context."""
        self._unmeter_train_step()
        own = vars(model).get('train_step')
        step = model.train_step
        meter = self._meter

        @functools.wraps(step)
        def metered_train_step(*args, **kwargs):
            self._counter.reset()
            try:
                with meter:
                    return step(*args, **kwargs)
            finally:
                self._step_bytes = [
                    max(old, new) for old, new in zip(
                        self._step_bytes, (self._counter.bytes, meter.bytes),
                        strict=True)
                ]

        model.train_step = metered_train_step
        self._metered = (model, own)

    def _unmeter_train_step(self) -> None:
        """Gives the model back the ``train_step`` it had."""
        if self._metered is None:
            return
        (model, own), self._metered = self._metered, None
        if own is None:
            del model.train_step
        else:
            model.train_step = own

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        """Starts counting this iteration's forwards."""
        self._step_bytes = [0, 0]
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        """Logs the iteration's memory to MessageHub."""
        analytical, measured = (count / MB for count in self._step_bytes)
        self.history['analytical'].append(analytical)
        self.history['measured'].append(measured)
        hub = runner.message_hub
        hub.update_scalar(ANALYTICAL_KEY, analytical)
        hub.update_scalar(MEASURED_KEY, measured)
        if torch.cuda.is_available():
            peak = torch.cuda.max_memory_allocated() / MB
            self.history['cuda'].append(peak)
            hub.update_scalar(CUDA_KEY, peak)
        hub.update_info(HISTORY_KEY, self.history)

    def summary(self) -> dict:
        """Peak and mean (MB) of both numbers over the iterations so far."""
        result = dict(
            analytical_mb=summarize(self.history['analytical']),
            measured_mb=summarize(self.history['measured']),
            iterations=len(self.history['analytical']),
            layers=self.layers)
        if self.history['cuda']:
            result['cuda_max_allocated_mb'] = summarize(self.history['cuda'])
        return result

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Writes :meth:`summary` to the checkpoint's meta."""
        checkpoint.setdefault('meta', {})['activation_memory'] = self.summary()

    def after_train(self, runner) -> None:
        """Logs the summary and writes it to the work dir as JSON."""
        self._counter.remove()
        self._unmeter_train_step()
        summary = self.summary()
        runner.logger.info(
            'activation memory (MB): analytical peak '
            f"{summary['analytical_mb']['peak']:.3f} mean "
            f"{summary['analytical_mb']['mean']:.3f}; measured peak "
            f"{summary['measured_mb']['peak']:.3f} mean "
            f"{summary['measured_mb']['mean']:.3f}")
        if is_main_process():
            with open(osp.join(runner.work_dir, self.json_name), 'w') as f:
                json.dump(summary, f, indent=2)
