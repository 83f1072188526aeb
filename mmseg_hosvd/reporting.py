"""Test records: metrics of a checkpoint with what it recorded in training."""
from typing import Dict, Optional

from mmengine.runner import CheckpointLoader


def checkpoint_meta(path: str) -> dict:
    """The ``meta`` dict of a checkpoint (empty if it has none)."""
    checkpoint = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    return dict(checkpoint.get('meta', {}) or {})


def checkpoint_record(config: str, checkpoint: str,
                      metrics: Dict[str, float]) -> dict:
    """One test result: config, checkpoint, metrics, memory, fine-tuning.

    Args:
        config: Config path.
        checkpoint: Checkpoint path.
        metrics: What ``Runner.test`` returned (aAcc, mIoU, mAcc in %).

    Returns:
        A JSON-serialisable dict.
    """
    meta = checkpoint_meta(checkpoint)
    return dict(
        config=config,
        checkpoint=checkpoint,
        metrics={k: float(v)
                 for k, v in metrics.items()},
        activation_memory=meta.get('activation_memory'),
        finetune=meta.get('finetune'),
        iterations=meta.get('iter'))


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


def format_test_report(record: dict) -> str:
    """Human-readable summary of a test record."""
    metrics = record['metrics']
    finetune = record.get('finetune') or {}
    lines = ['', '=' * 60, f"config:     {record['config']}",
             f"checkpoint: {record['checkpoint']}"]
    if finetune:
        lines.append(f"fine-tuning: method={finetune.get('method')} "
                     f"layers={finetune.get('num_layers')} "
                     f"eps={finetune.get('eps')}")
    lines.append(f"mIoU: {metrics.get('mIoU', float('nan')):.2f}  "
                 f"mAcc: {metrics.get('mAcc', float('nan')):.2f}  "
                 f"aAcc: {metrics.get('aAcc', float('nan')):.2f}")
    lines += _memory_lines(record.get('activation_memory'))
    lines.append('=' * 60)
    return '\n'.join(lines)
