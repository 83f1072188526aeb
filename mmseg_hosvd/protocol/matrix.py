"""The embedded protocol: its models, configs, data and checkpoints.

Each stage runs as a ``tools/`` process on a config of ``configs/``
(:mod:`mmseg_hosvd.protocol.runs`; a trained stage that is tested tests in
its training process); a stage whose final checkpoint (or test record)
exists and is up to date (:func:`stale_reason`) is skipped, so an
interrupted protocol resumes where it stopped.
"""
import os.path as osp
import pickle
from typing import Callable, List, Optional

from mmengine.config import Config

from ..datasets import DEFAULT_SIZES, generate
from ..datasets.synthetic_shapes import (
    STAMP_NAME,
    generation_stamp,
    read_stamp,
)
from .config_drift import changed_keys, trained_config
from .config_table import MODELS, protocol_tags
from .peers import peer_tags

#: Protocol model name -> (config folder, config prefix), from the config
#: table (:mod:`~mmseg_hosvd.protocol.config_table`).
MODEL_CONFIGS = {
    name: (model.folder, model.prefix)
    for name, model in MODELS.items()
}
#: The paper's six CNN models, the default matrix of tools/run_protocol.py;
#: the transformers are opt-in (``--models segformer swin-upernet``).
PAPER_MODELS = ('deeplabv3', 'deeplabv3-m', 'pspnet', 'pspnet-m', 'fcn',
                'upernet')
SOURCE_SUFFIX = 'shapes-source-128x128'
#: Where the protocol's configs read the generated dataset (relative to the
#: working directory, as their ``data_root``).
DATA_ROOT = 'data/synthetic_shapes'
TARGET_SUFFIX = 'shapes-target-128x128'
#: Sub-folder of a config's work dir that holds its run with another
#: ``randomness.seed`` (``tools/run_protocol.py --seeds``).
SEED_DIR = 'seed{seed}'


def config_path(model: str,
                stage: str,
                method: Optional[str] = None,
                layers: Optional[int] = None,
                root: str = 'configs') -> str:
    """Path of a protocol config.

    Args:
        model: A key of :data:`MODEL_CONFIGS`.
        stage: 'pretrain', 'calib' or 'finetune'.
        method: For 'finetune', a tag of
            :func:`~.config_table.protocol_tags` (e.g.
            'hosvd-eps0.8') or of
            :func:`~mmseg_hosvd.protocol.peers.peer_tags` (e.g.
            'vanilla-mb1').
        layers: For 'finetune', 5 or 10.
        root: The configs folder.

    Returns:
        The config path.

    Raises:
        ValueError: For an unknown model, stage, method or layer count.
    """
    if model not in MODEL_CONFIGS:
        raise ValueError(f'unknown model {model!r}; choose one of '
                         f'{sorted(MODEL_CONFIGS)}')
    folder, prefix = MODEL_CONFIGS[model]
    if stage == 'pretrain':
        name = f'{prefix}_pretrain_{SOURCE_SUFFIX}'
    elif stage == 'calib':
        name = f'{prefix}_calib_{TARGET_SUFFIX}'
    elif stage == 'finetune':
        tags = protocol_tags() + peer_tags()
        if method not in tags:
            raise ValueError(f'unknown method {method!r}; choose one of '
                             f'{list(tags)}')
        if layers not in (5, 10):
            raise ValueError(f'layers must be 5 or 10, got {layers!r}')
        name = f'{prefix}_{method}-l{layers}_{TARGET_SUFFIX}'
    else:
        raise ValueError(f"stage must be 'pretrain', 'calib' or 'finetune', "
                         f'got {stage!r}')
    return osp.join(root, folder, f'{name}.py')


def work_dir(config: str,
             work_root: str = 'work_dirs',
             seed: Optional[int] = None) -> str:
    """The work dir of a run of ``config``.

    Args:
        config: The config path.
        work_root: The folder of the work dirs.
        seed: The run's ``randomness.seed`` when set on the command line;
            None for the config's own.

    Returns:
        The work dir tools/train.py uses for ``config`` by default, or, for
        a seed, its :data:`SEED_DIR` sub-folder.
    """
    default = osp.join(work_root, osp.splitext(osp.basename(config))[0])
    if seed is None:
        return default
    return osp.join(default, SEED_DIR.format(seed=seed))


def final_checkpoint(config: str,
                     work_root: str = 'work_dirs',
                     seed: Optional[int] = None) -> str:
    """Path of the checkpoint written at the config's last iteration (in
    the work dir of ``seed``, see :func:`work_dir`)."""
    max_iters = Config.fromfile(config).train_cfg.max_iters
    return osp.join(work_dir(config, work_root, seed),
                    f'iter_{max_iters}.pth')


def seed_options(seed: Optional[int]) -> List[str]:
    """The ``--cfg-options`` of tools/train.py that train with ``seed``
    (none for None: the config's own seed)."""
    return [] if seed is None else [f'randomness.seed={seed}']


def dataset_ready(root: str,
                  sizes: Optional[dict] = None,
                  image_size: int = 128) -> bool:
    """Whether ``root`` holds the dataset that this generator writes with
    these arguments and seed 0 (its stamp says so: version, sizes, image
    size, seed)."""
    sizes = DEFAULT_SIZES if sizes is None else sizes
    return read_stamp(root) == generation_stamp(sizes, image_size, 0)


def ensure_dataset(root: str,
                   log: Callable[[str], None],
                   sizes: Optional[dict] = None,
                   image_size: int = 128) -> None:
    """Generates the embedded dataset unless it is already there.

    A dataset by another generator version, with other arguments, or whose
    generation was interrupted is generated again; the checkpoints trained
    on it are then older than its stamp, and
    :func:`~mmseg_hosvd.protocol.runs.ensure_trained` trains them again.

    Args:
        root: Dataset root.
        log: Receives progress messages.
        sizes: Images per domain and split (the default sizes when None).
        image_size: Side of the images.
    """
    if dataset_ready(root, sizes, image_size):
        log(f'dataset: reusing {root}')
        return
    stamp = read_stamp(root)
    if stamp is not None or osp.isdir(osp.join(root, 'source')):
        found = 'no stamp' if stamp is None else (
            f"version {stamp.get('version')}, image size "
            f"{stamp.get('image_size')}, sizes {stamp.get('sizes')}")
        log(f'dataset: {root} is not what this generator writes ({found}); '
            'generating it again')
    else:
        log(f'dataset: generating {root}')
    count = generate(root, sizes, image_size)
    log(f'dataset: wrote {count} images')


def stale_reason(config: str,
                 checkpoint: str,
                 seed: Optional[int] = None) -> Optional[str]:
    """Why an existing final checkpoint of ``config`` must be trained again.

    As ``make`` does with its inputs: it is stale when older than the stamp
    of the generated dataset it trains on (``generated.json`` next to the
    domain folder of ``train_dataloader.dataset.data_root``) or than the
    checkpoint it starts from (``load_from``). Like ``make``, it goes by
    file times there: copies that do not keep them can trigger or miss a
    retraining. It is also stale when the config it was trained with
    (recorded in the checkpoint) differs from ``config`` in what defines
    training (:data:`~mmseg_hosvd.protocol.config_drift.TRAINING_KEYS`), or
    when the checkpoint cannot be read.

    Args:
        config: The config file.
        checkpoint: Its final checkpoint.
        seed: The ``randomness.seed`` the run was asked to train with
            (:func:`seed_options`); None for the config's own.

    Returns:
        The reason, or None when the checkpoint is up to date.
    """
    cfg = Config.fromfile(config)
    if seed is not None:
        cfg.merge_from_dict({'randomness.seed': seed})
    made = osp.getmtime(checkpoint)
    data_root = cfg.train_dataloader.dataset.get('data_root')
    if data_root:
        stamp = osp.join(osp.dirname(osp.normpath(data_root)), STAMP_NAME)
        if osp.isfile(stamp) and osp.getmtime(stamp) > made:
            return f'older than the dataset {stamp}'
    load_from = cfg.get('load_from')
    if load_from and osp.isfile(load_from) and osp.getmtime(load_from) > made:
        return f'older than the checkpoint it starts from, {load_from}'
    try:
        trained = trained_config(checkpoint)
    except (EOFError, RuntimeError, pickle.UnpicklingError) as error:
        # empty, truncated, or not a checkpoint the allowlist loads: never
        # unpickled fully, trained again
        return f'unreadable ({type(error).__name__}: {error})'
    changed = [] if trained is None else changed_keys(cfg, trained)
    if changed:
        return (f'trained with another {", ".join(changed)} than {config} '
                'has now')
    return None
