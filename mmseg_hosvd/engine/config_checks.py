"""Checks a config before a Runner is built, with errors that say the fix."""
import copy
import os.path as osp

from mmengine.config import Config
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from mmseg_hosvd.engine.latest_checkpoint import latest_checkpoint

#: How to get each dataset when its data root is missing.
DATA_HINTS = {
    'SyntheticShapesDataset':
    'generate it with: python tools/generate_dataset.py',
    'PascalVOCDataset':
    'download VOC2012 and SBD and convert them with mmseg\'s '
    'tools/dataset_converters/voc_aug.py (see mmseg docs, "Prepare datasets")',
    'CityscapesDataset':
    'download leftImg8bit and gtFine from cityscapes-dataset.com and run '
    'mmseg\'s tools/dataset_converters/cityscapes.py',
    'ADE20KDataset':
    'download ADEChallengeData2016 from the MIT scene parsing benchmark',
}


def data_hint(kind) -> str:
    """How to get a dataset of ``kind`` (a class or registered name): the
    hint of the class or of the nearest base class that has one.

    Args:
        kind: The dataset's class, or its name in mmseg's DATASETS.

    Returns:
        The hint, or 'put the dataset there' for a dataset without one.
    """
    cls = DATASETS.get(kind) if isinstance(kind, str) else kind
    for base in getattr(cls, '__mro__', ()):
        if base.__name__ in DATA_HINTS:
            return DATA_HINTS[base.__name__]
    return 'put the dataset there'


def _datasets(dataset_cfg):
    if dataset_cfg is None:
        return []
    if dataset_cfg.get('type') == 'ConcatDataset':
        return [d for sub in dataset_cfg['datasets'] for d in _datasets(sub)]
    if 'dataset' in dataset_cfg and 'data_root' not in dataset_cfg:
        return _datasets(dataset_cfg['dataset'])
    return [dataset_cfg]


def check_images(key: str, dataset_cfg: dict) -> None:
    """Checks that a segmentation dataset lists images.

    Otherwise MMEngine fails building it with "need at least one array to
    concatenate" (serializing an empty list), naming no directory. The
    dataset is built without a pipeline and not initialized, and lists its
    files as it would in the run.

    Args:
        key: The dataloader key, for the message.
        dataset_cfg: A dataset config (not a wrapper).

    Raises:
        FileNotFoundError: Naming the image directory, when it is missing or
            lists no image, and how to get the data.
    """
    kind = dataset_cfg.get('type')
    cls = DATASETS.get(kind) if isinstance(kind, str) else kind
    if not (isinstance(cls, type) and issubclass(cls, BaseSegDataset)):
        return
    root = dataset_cfg.get('data_root', None) or ''
    img_dir = osp.join(root, dataset_cfg.get('data_prefix', {}).get(
        'img_path', ''))
    hint = data_hint(cls)
    if not osp.isdir(img_dir):
        raise FileNotFoundError(f'{key}: image directory {img_dir!r} of '
                                f'{cls.__name__} does not exist; {hint}')
    built = copy.deepcopy(dict(dataset_cfg))
    built.update(pipeline=[], lazy_init=True)
    dataset = DATASETS.build(built)
    try:
        samples = dataset.load_data_list()
    except FileNotFoundError as error:  # a dataset's own check
        raise FileNotFoundError(f'{key}: {error}') from error
    if not samples:
        raise FileNotFoundError(
            f'{key}: image directory {img_dir!r} of {cls.__name__} holds '
            f'no images (files ending in {dataset.img_suffix!r}); {hint}')


def check_data_roots(cfg: Config, loaders=('train_dataloader',
                                           'val_dataloader')) -> None:
    """Checks that every dataset's data root exists and lists images.

    Args:
        cfg: The config.
        loaders: Dataloader keys to check.

    Raises:
        ValueError: If a needed dataloader has no dataset.
        FileNotFoundError: Naming the missing root, or the image directory
            that is missing or empty (:func:`check_images`), and how to get
            the data.
    """
    for key in loaders:
        loader = cfg.get(key, None)
        if loader is None:
            continue
        datasets = _datasets(loader.get('dataset', None))
        if not datasets:
            raise ValueError(f'{key} has no dataset; add {key}.dataset to '
                             'the config (see configs/_base_/datasets/)')
        for dataset in datasets:
            root = dataset.get('data_root', None)
            if root and not osp.isdir(root):
                hint = data_hint(dataset.get('type'))
                raise FileNotFoundError(
                    f'{key}: data_root {root!r} of {dataset.get("type")} '
                    f'does not exist; {hint}')
            check_images(key, dataset)


def check_load_from(cfg: Config) -> None:
    """Checks that ``load_from`` exists unless a resumed run continues
    from its work dir's own checkpoint.

    Raises:
        FileNotFoundError: Naming the checkpoint and the config that
            produces it when the path is under work_dirs.
    """
    path = cfg.get('load_from', None)
    if not path or '://' in path:
        return
    if cfg.get('resume', False) and cfg.get('work_dir', None) and (
            latest_checkpoint(cfg.work_dir)[0] is not None):
        return
    if not osp.isfile(path):
        producer = osp.basename(osp.dirname(path))
        raise FileNotFoundError(
            f'load_from checkpoint {path!r} does not exist; train the '
            f'config that writes it first (work dir {producer!r}: '
            f'python tools/train.py configs/<model>/{producer}.py)')


def check_train_config(cfg: Config) -> None:
    """Every check needed before training.

    Raises:
        ValueError: If the config has no train dataloader.
        FileNotFoundError: For a missing data root or load_from checkpoint.
    """
    if cfg.get('train_dataloader', None) is None:
        raise ValueError('the config has no train_dataloader; inherit a '
                         'dataset config from configs/_base_/datasets/')
    check_data_roots(cfg)
    check_load_from(cfg)
