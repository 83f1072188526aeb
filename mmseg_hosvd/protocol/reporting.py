"""Test records: metrics of a checkpoint with what it recorded in training."""
from typing import Dict, Optional

from mmengine.config import Config
from mmengine.runner import CheckpointLoader

from ..reductions.describe import describe_reductions, reductions_of
from .comparison import setting_label

#: Fraction of the first iterations left out of the step-time median.
WARMUP_FRACTION = 0.1


def median(values):
    """Median of a non-empty sequence."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return float(ordered[middle - 1] + ordered[middle]) / 2


def step_time(checkpoint: dict) -> Optional[float]:
    """Median training step time (s) from a checkpoint's MessageHub state.

    MMEngine's IterTimerHook logs ``train/time`` every iteration; the first
    10% of iterations (warm-up) are left out.

    Returns:
        The median in seconds, or None if the checkpoint has no timings.
    """
    hub = checkpoint.get('message_hub') or {}
    buffer = (hub.get('log_scalars') or {}).get('train/time')
    if buffer is None:
        return None
    times = list(buffer.data[0])
    times = times[int(len(times) * WARMUP_FRACTION):] or times
    return median(times) if times else None


def checkpoint_record(config: str, checkpoint: str,
                      metrics: Dict[str, float]) -> dict:
    """One test result: config, checkpoint, its seed, metrics, memory,
    fine-tuning, and the checkpoint its training started from.

    Args:
        config: Config path.
        checkpoint: Checkpoint path.
        metrics: What ``Runner.test`` returned (aAcc, mIoU, mAcc in %).

    Returns:
        A JSON-serialisable dict.
    """
    loaded = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    meta = dict(loaded.get('meta', {}) or {})
    # the config as trained (command-line flags such as --amp applied)
    trained = (Config.fromstring(meta['cfg'], '.py')
               if meta.get('cfg') else Config.fromfile(config))
    return dict(
        config=config,
        checkpoint=checkpoint,
        seed=(trained.get('randomness') or {}).get('seed'),
        metrics={k: float(v)
                 for k, v in metrics.items()},
        activation_memory=meta.get('activation_memory'),
        step_peak_memory=meta.get('step_peak_memory'),
        finetune=meta.get('finetune'),
        weight_change=meta.get('weight_change'),
        reductions=reductions_of(trained),
        iterations=meta.get('iter'),
        step_time_s=step_time(loaded),
        start_checkpoint=meta.get('start_checkpoint'))


def _memory_lines(memory: Optional[dict]):
    if not memory:
        return ['activation memory: not recorded (no ActivationMemoryHook '
                'in the training config)']
    lines = [
        'activation memory (MB)       peak        mean',
        f"  analytical (paper)   {memory['analytical_mb']['peak']:10.3f} "
        f"{memory['analytical_mb']['mean']:10.3f}",
        f"  measured (autograd)  {memory['measured_mb']['peak']:10.3f} "
        f"{memory['measured_mb']['mean']:10.3f}",
    ]
    if 'cuda_max_allocated_mb' in memory:
        cuda = memory['cuda_max_allocated_mb']
        lines.append(f"  cuda max allocated   {cuda['peak']:10.3f} "
                     f"{cuda['mean']:10.3f}")
    return lines


def _step_peak_lines(peak: Optional[dict]):
    if not peak:
        return ['whole-step peak memory: not recorded (no StepPeakMemoryHook '
                'in the training config)']
    phases = peak['phase_peaks_mb']
    top = max(phases, key=phases.get)
    return [f"whole-step peak memory (iteration {peak['iteration']}): "
            f"{peak['peak_increment_mb']:.1f} MB over the step's start, set "
            f'by {top}']


def format_test_report(record: dict) -> str:
    """Human-readable summary of a test record."""
    metrics = record['metrics']
    finetune = record.get('finetune') or {}
    lines = ['', '=' * 60, f"config:     {record['config']}",
             f"checkpoint: {record['checkpoint']}"]
    if record.get('seed') is not None:
        lines.append(f"seed:       {record['seed']}")
    if finetune:
        lines.append(f"fine-tuning: method={finetune.get('method')}"
                     f"{' (lean)' if finetune.get('lean') else ''} "
                     f"layers={finetune.get('num_layers')} "
                     f'setting: {setting_label(finetune) or "-"}')
    lines.append(f"mIoU: {metrics.get('mIoU', float('nan')):.2f}  "
                 f"mAcc: {metrics.get('mAcc', float('nan')):.2f}  "
                 f"aAcc: {metrics.get('aAcc', float('nan')):.2f}")
    reductions = describe_reductions(record.get('reductions'))
    if reductions:
        lines.append(f'memory reductions: {reductions}')
    lines += _memory_lines(record.get('activation_memory'))
    lines += _step_peak_lines(record.get('step_peak_memory'))
    change = record.get('weight_change')
    if change and change.get('min_relative_change') is not None:
        over_decay = change.get('min_change_over_decay')
        lines.append('fine-tuned convolutions: least relative weight change '
                     f"{change['min_relative_change']:.3g}"
                     + ('' if over_decay is None else
                        f', least change over what weight decay alone '
                        f'gives {over_decay:.1f}x')
                     + ', least gradient share of the update '
                     f"{change['min_grad_share']:.3f}")
    if record.get('step_time_s') is not None:
        lines.append(f"training step time (median): "
                     f"{record['step_time_s']:.3f} s")
    lines.append('=' * 60)
    return '\n'.join(lines)
