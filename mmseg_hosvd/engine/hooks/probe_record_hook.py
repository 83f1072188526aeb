"""Write what a short run measured to a small file, without a checkpoint."""
import json
import os.path as osp

from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from .autocast_error_hook import AutocastErrorHook
from .compress_conv_hook import CompressConvHook
from .step_peak_memory_hook import StepPeakMemoryHook

#: The file the record goes to, in the run's work dir.
PROBE_RECORD_FILE = 'probe_record.json'
#: The hooks whose checkpoint meta the record keeps: the whole-step peak,
#: the fine-tune plan (with an allocation's gradient error) and
#: autocast's gradient error.
RECORDED_HOOKS = (StepPeakMemoryHook, CompressConvHook, AutocastErrorHook)


@HOOKS.register_module()
class ProbeRecordHook(Hook):
    """Writes ``probe_record.json`` to the work dir when training ends.

    The planner's probes train a few iterations to measure a set-up; a
    checkpoint would hold the whole model (132 MB for Swin-T UPerNet, for
    each probe) to carry a few numbers. This record holds those
    numbers: ``meta``, what :data:`RECORDED_HOOKS` write into a
    checkpoint's meta (each hook's own ``before_save_checkpoint``, so the
    values are a checkpoint's), and ``train_time``, every iteration's time
    in seconds from MessageHub, in order.
    """

    priority = 'LOWEST'

    def after_train(self, runner) -> None:
        """Writes the record."""
        checkpoint = dict(meta={})
        for hook in runner.hooks:
            if isinstance(hook, RECORDED_HOOKS):
                hook.before_save_checkpoint(runner, checkpoint)
        times = runner.message_hub.get_scalar('train/time').data[0]
        record = dict(meta=checkpoint['meta'],
                      train_time=[float(t) for t in times])
        with open(osp.join(runner.work_dir, PROBE_RECORD_FILE), 'w') as f:
            json.dump(record, f, indent=1)
