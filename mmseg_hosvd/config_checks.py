"""Checks a config before a Runner is built, with errors that say the fix."""
import os.path as osp

from mmengine.config import Config

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


def _datasets(dataset_cfg):
    if dataset_cfg is None:
        return []
    if dataset_cfg.get('type') == 'ConcatDataset':
        return [d for sub in dataset_cfg['datasets'] for d in _datasets(sub)]
    if 'dataset' in dataset_cfg and 'data_root' not in dataset_cfg:
        return _datasets(dataset_cfg['dataset'])
    return [dataset_cfg]


def check_data_roots(cfg: Config, loaders=('train_dataloader',
                                           'val_dataloader')) -> None:
    """Checks that every dataset's data root exists.

    Args:
        cfg: The config.
        loaders: Dataloader keys to check.

    Raises:
        ValueError: If a needed dataloader has no dataset.
        FileNotFoundError: Naming the missing root and how to get the data.
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
                hint = DATA_HINTS.get(dataset.get('type'),
                                      'put the dataset there')
                raise FileNotFoundError(
                    f'{key}: data_root {root!r} of {dataset.get("type")} '
                    f'does not exist; {hint}')


def check_load_from(cfg: Config) -> None:
    """Checks that ``load_from`` exists unless resuming.

    Raises:
        FileNotFoundError: Naming the checkpoint and the config that
            produces it when the path is under work_dirs.
    """
    path = cfg.get('load_from', None)
    if not path or cfg.get('resume', False) or '://' in path:
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
