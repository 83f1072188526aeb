"""Real inputs for the benchmarks: the protocol's checkpoints and images.

Random weights and inputs say little about the ranks HOSVD-eps finds in
fine-tuning; with ``--from-protocol`` the benchmarks start each model from
the protocol's calibrated checkpoint (the starting point of its fine-tuning
runs) and use the first images of the generated target domain.
"""
import os.path as osp

# mmseg_hosvd first: with mmcv-lite, mmseg imports only after its compat fixes
import mmseg_hosvd  # noqa: F401  # isort: skip
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.runner import set_random_seed
from mmseg.registry import DATASETS, MODELS

from mmseg_hosvd.protocol import config_path, final_checkpoint


def protocol_checkpoint(model_name):
    """The calibrated checkpoint the protocol's fine-tuning starts from.

    Raises:
        SystemExit: If the protocol has not produced it yet.
    """
    checkpoint = final_checkpoint(config_path(model_name, 'calib'))
    if not osp.isfile(checkpoint):
        raise SystemExit(f'--from-protocol: no checkpoint {checkpoint}; run '
                         f'python tools/run_protocol.py first')
    return checkpoint


def target_batch(model_name, batch, size):
    """The first ``batch`` images of the generated target domain.

    Args:
        model_name: A protocol model name.
        batch: Number of images.
        size: Expected crop size (the pipeline's).

    Returns:
        ``(inputs, labels)`` after the fine-tuning config's pipeline and
        data preprocessor: (batch, 3, size, size) and (batch, size, size).
    """
    cfg = Config.fromfile(config_path(model_name, 'finetune', 'vanilla', 5))
    set_random_seed(0)  # the same crops and flips every run
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    model = MODELS.build(cfg.model)
    data = model.data_preprocessor(
        pseudo_collate([dataset[i] for i in range(batch)]), True)
    inputs = data['inputs']
    labels = torch.stack(
        [s.gt_sem_seg.data[0] for s in data['data_samples']]).long()
    if inputs.shape[-2:] != (size, size):
        raise SystemExit(f'the target pipeline gives {tuple(inputs.shape)}, '
                         f'not {size} x {size}')
    return inputs, labels


def model_inputs(model_name, from_protocol, batch, size):
    """What a benchmark runs ``model_name`` on.

    Args:
        model_name: A protocol model name.
        from_protocol: Use the protocol's calibrated checkpoint and target
            images; otherwise random weights and a seeded random batch.
        batch: Batch size.
        size: Crop size.

    Returns:
        ``(checkpoint or None, inputs, labels)``.
    """
    if from_protocol:
        return (protocol_checkpoint(model_name),
                *target_batch(model_name, batch, size))
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(batch, 3, size, size, generator=gen)
    labels = torch.randint(0, 5, (batch, size, size), generator=gen)
    return None, inputs, labels
