"""Real inputs for the benchmarks: the protocol's checkpoints and images.

Random weights and inputs say little about the ranks HOSVD-eps finds in
fine-tuning; with ``--from-protocol`` the benchmarks start each model from
the protocol's calibrated checkpoint (the starting point of its fine-tuning
runs) and use the first images of the generated target domain, through the
fine-tuning config's training pipeline. At a size other than the generated
dataset's, the generator draws target images at that size into a cache under
``work_dirs/benchmark_inputs/`` and the pipeline's scale and crop are set to
it (:func:`target_config`).
"""
import os.path as osp

# mmseg_hosvd first: with mmcv-lite, mmseg imports only after its compat fixes
import mmseg_hosvd  # noqa: F401  # isort: skip
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.runner import set_random_seed
from mmseg.registry import DATASETS, MODELS
from mmseg.utils import register_all_modules

from mmseg_hosvd.datasets.synthetic_shapes import (
    GENERATOR_VERSION,
    generate,
    read_stamp,
)
from mmseg_hosvd.protocol.matrix import config_path, final_checkpoint


def add_input_arguments(parser, device: bool = True) -> None:
    """The flags every model benchmark shares: ``--device`` (if
    ``device``), ``--from-protocol`` and ``--json``."""
    if device:
        parser.add_argument('--device', default=None,
                            help='cpu or cuda (cuda when available)')
    parser.add_argument('--from-protocol', action='store_true',
                        help="start from the protocol's calibrated "
                        'checkpoints, on target-domain images (drawn at '
                        "the run's size when it is not the generated "
                        "dataset's)")
    parser.add_argument('--json', help='write the records here')


def lean_thresholds(model_name):
    """The lean region's ``lean_eps`` of the model's ``*-lean-l5`` config,
    so that the benchmarks measure the lean region the protocol trains."""
    cfg = Config.fromfile(
        config_path(model_name, 'finetune', 'hosvd-eps0.8-lean', 5))
    return dict(cfg.custom_hooks[0]['lean_eps'])


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


def target_root(data_root, size, count, work_root='work_dirs'):
    """The fine-tuning config's target domain with images of ``size`` px.

    The protocol's own ``data_root`` when its generated images have that
    size. Otherwise the project's generator draws ``count`` target training
    images at ``size`` px with the protocol dataset's seed (0 when it has no
    stamp) into ``<work_root>/benchmark_inputs/synthetic_shapes-<size>px``,
    reused while its stamp says it holds at least ``count`` of them from the
    same generator version and seed.

    Args:
        data_root: The config's ``data_root`` (``<root>/target``).
        size: Image side in pixels.
        count: Number of target training images needed.
        work_root: The folder of the work dirs.

    Returns:
        The ``data_root`` to read the images from.
    """
    stamp = read_stamp(osp.dirname(osp.normpath(data_root)))
    if stamp is not None and stamp['image_size'] == size:
        return data_root
    seed = 0 if stamp is None else stamp['seed']
    root = osp.join(work_root, 'benchmark_inputs',
                    f'synthetic_shapes-{size}px')
    cached = read_stamp(root)
    if not (cached is not None
            and cached['version'] == GENERATOR_VERSION
            and cached['image_size'] == size and cached['seed'] == seed
            and cached['sizes']['target'].get('train', 0) >= count):
        generate(root, sizes={'target': {'train': count}}, image_size=size,
                 seed=seed)
    return osp.join(root, 'target')


def target_config(model_name, size, count):
    """The fine-tuning config (vanilla, 5 layers) of ``model_name`` at
    ``size`` px.

    Its training set is read from :func:`target_root`, and its
    ``RandomResize`` scale, ``RandomCrop`` crop size and data
    preprocessor's size are set to ``size``; the other steps (the random
    scale ratio and the flip) stay as they are.

    Args:
        model_name: A protocol model name.
        size: Image and crop side.
        count: Number of target training images needed (at least a batch
            of the config's is drawn).

    Returns:
        The config.
    """
    cfg = Config.fromfile(config_path(model_name, 'finetune', 'vanilla', 5))
    dataset = cfg.train_dataloader.dataset
    dataset.data_root = target_root(
        dataset.data_root, size,
        max(count, cfg.train_dataloader.batch_size))
    for step in dataset.pipeline:
        if step['type'] == 'RandomResize':
            step['scale'] = (size, size)
        if step['type'] == 'RandomCrop':
            step['crop_size'] = (size, size)
    cfg.model.data_preprocessor.size = (size, size)
    return cfg


def _target_samples(model_name, batch, size, start):
    """The config of :func:`target_config` and ``batch`` samples from
    ``start`` through its training pipeline, after a fixed seed."""
    register_all_modules()
    cfg = target_config(model_name, size, start + batch)
    set_random_seed(0)  # the same crops and flips every run
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    return cfg, pseudo_collate(
        [dataset[i] for i in range(start, start + batch)])


def target_batch(model_name, batch, size, start=0):
    """``batch`` images of the generated target domain from ``start``.

    Args:
        model_name: A protocol model name.
        batch: Number of images.
        size: Image and crop side (:func:`target_config`).
        start: Index of the first image.

    Returns:
        ``(inputs, labels)`` after the fine-tuning config's pipeline and
        data preprocessor at ``size``: (batch, 3, size, size) and
        (batch, size, size).
    """
    cfg, data = _target_samples(model_name, batch, size, start)
    data = MODELS.build(cfg.model.data_preprocessor)(data, True)
    labels = torch.stack(
        [s.gt_sem_seg.data[0] for s in data['data_samples']]).long()
    return data['inputs'], labels


def raw_batch(model_name, from_protocol, batch, size, num_classes=5,
              start=0):
    """A batch as the data loader gives it, before the data preprocessor.

    Args:
        model_name: A protocol model name.
        from_protocol: The target domain's images at ``size`` px through
            the fine-tuning config's pipeline at ``size``
            (:func:`target_config`; an image its random rescaling made
            smaller than ``size`` is padded by the data preprocessor, as in
            training); otherwise seeded random uint8 images and labels.
        batch: Number of images.
        size: Image side.
        num_classes: Label range of the random labels.
        start: Index of the first image.

    Returns:
        ``dict(inputs=[...], data_samples=[...])``.
    """
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    if from_protocol:
        return _target_samples(model_name, batch, size, start)[1]
    gen = torch.Generator().manual_seed(start)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, size, size), generator=gen,
                                    dtype=torch.uint8))
        sample = SegDataSample(metainfo=dict(img_shape=(size, size),
                                             ori_shape=(size, size)))
        sample.gt_sem_seg = PixelData(data=torch.randint(
            0, num_classes, (1, size, size), generator=gen))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


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


def finetuned_inputs(model_name, batches, batch=8, size=128):
    """Inputs of the 5 fine-tuned convolutions of a calibrated model.

    Runs ``batches`` target batches through the protocol's calibrated
    checkpoint and captures each distinct input of the layers HOSVD would
    compress (an input read by several layers once).

    Returns:
        A list of ``(label, activation)``, the label naming the first layer
        that reads it and the batch (``#0``, ``#1``...).
    """
    from fine_tuned_model import build_fine_tuned_model
    model, plan, _, _ = build_fine_tuned_model(
        model_name, 'vanilla', 5, checkpoint=protocol_checkpoint(model_name))
    names = plan['compressed']
    seen = []

    def capture(name):
        def hook(module, args):
            if all(t is not args[0] for _, t in seen):
                seen.append((name, args[0]))
        return hook

    for name in names:
        model.get_submodule(name).register_forward_pre_hook(capture(name))
    model.eval()
    captured = []
    with torch.no_grad():
        for index in range(batches):
            seen.clear()
            model._forward(target_batch(model_name, batch, size,
                                        start=index * batch)[0])
            captured += [(f'{name} #{index}', x) for name, x in seen]
    return captured
