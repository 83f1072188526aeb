"""The real-dataset configs (``configs/paper/<model>/``): written by
``tools/make_configs.py``, loadable, building their datasets on tiny trees
in mmseg's layouts, and chaining Cityscapes pretraining, calibration and
fine-tuning with MMEngine's Runner for every protocol model."""
import functools
import glob
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmseg.registry import DATASETS
from PIL import Image

from mmseg_hosvd.protocol import config_files
from mmseg_hosvd.protocol import real_dataset_configs as real
from mmseg_hosvd.protocol.config_table import LAYER_COUNTS, TABLE
from mmseg_hosvd.protocol.matrix import config_path
from mmseg_hosvd.protocol.real_dataset_table import (
    FOLDER,
    ITERS,
    REAL_CHANGES,
    SOURCE,
    TARGETS,
)

from .helpers import CONFIGS, MODEL_NAMES
from .test_config_generation import make_configs_main

PAPER = osp.join(CONFIGS, FOLDER)
DATASETS_BY_SUFFIX = {d.suffix: d for d in (SOURCE, ) + TARGETS}
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
#: Images of each split of the tiny trees, and the chain's crop.
IMAGES, SIZE = 2, 32


pytestmark = pytest.mark.usefixtures('one_thread')


@functools.lru_cache(maxsize=None)
def load(path: str) -> Config:
    """The config at ``path``, loaded once for all tests (not to be
    changed)."""
    return Config.fromfile(path)


def real_path(model: str, middle: str, suffix: str) -> str:
    folder, prefix = TABLE.models[model].folder, TABLE.models[model].prefix
    return osp.join(PAPER, folder, f'{prefix}_{middle}_{suffix}.py')


def _png(path, array) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _pair(rng, image, label, shape, classes) -> None:
    """An RGB image and its label map of ``classes`` values (and 255)."""
    _png(image, rng.integers(0, 256, shape + (3, ), dtype=np.uint8))
    labels = rng.integers(0, classes, shape).astype(np.uint8)
    labels[:2] = 255
    _png(label, labels)


@pytest.fixture(scope='module')
def data_roots(tmp_path_factory):
    """Tiny Cityscapes, VOC12Aug and ADE20K trees in mmseg's layouts, by
    the default ``data_root`` of each dataset base."""
    rng = np.random.default_rng(0)
    top = tmp_path_factory.mktemp('real')
    city = top / 'cityscapes'
    for split in ('train', 'val'):
        for i in range(IMAGES):
            stem = f'{split}/aachen/aachen_{i:06d}_000019'
            _pair(rng, city / 'leftImg8bit' / f'{stem}_leftImg8bit.png',
                  city / 'gtFine' / f'{stem}_gtFine_labelTrainIds.png',
                  (32, 64), 19)
    voc = top / 'VOCdevkit' / 'VOC2012'
    sets = voc / 'ImageSets' / 'Segmentation'
    sets.mkdir(parents=True)
    for split, year in (('train', 2007), ('aug', 2008), ('val', 2009)):
        names = [f'{year}_{i:06d}' for i in range(IMAGES)]
        (sets / f'{split}.txt').write_text('\n'.join(names) + '\n')
        for name in names:
            _pair(rng, voc / 'JPEGImages' / f'{name}.jpg',
                  voc / 'SegmentationClass' / f'{name}.png', (32, 40), 21)
            _png(voc / 'SegmentationClassAug' / f'{name}.png',
                 np.asarray(Image.open(voc / 'SegmentationClass' /
                                       f'{name}.png')))
    ade = top / 'ade' / 'ADEChallengeData2016'
    for split in ('training', 'validation'):
        for i in range(IMAGES):
            name = f'ADE_{split[:5]}_{i + 1:08d}'
            _pair(rng, ade / 'images' / split / f'{name}.jpg',
                  ade / 'annotations' / split / f'{name}.png', (32, 40), 151)
    return {
        'data/cityscapes/': str(city),
        'data/VOCdevkit/VOC2012': str(voc),
        'data/ade/ADEChallengeData2016': str(ade),
    }


def _data_root_keys(node, key):
    """Dotted keys of every dict with a ``data_root`` under ``node``."""
    if isinstance(node, dict):
        if 'data_root' in node:
            yield f'{key}.data_root', node['data_root']
        for name, value in node.items():
            yield from _data_root_keys(value, f'{key}.{name}')
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _data_root_keys(value, f'{key}.{i}')


def point_at(cfg: Config, roots: dict) -> None:
    """Points every dataset of ``cfg`` at its tiny tree, as
    ``--cfg-options`` would."""
    cfg.merge_from_dict({
        key: roots[default]
        for loader in LOADERS
        for key, default in _data_root_keys(cfg[loader].to_dict(), loader)
    })


def test_configs_on_disk_are_what_the_tool_writes():
    state = config_files.compare(real, CONFIGS)
    assert state == dict(differ=[], missing=[], extra=[]), (
        'edited by hand, or a table changed without running '
        'python tools/make_configs.py')
    per_model = 1 + len(TARGETS) * (1 + len(TABLE.settings) *
                                    len(LAYER_COUNTS))
    assert len(real.render_all()) == per_model * len(TABLE.models) == 472
    assert all(text.startswith(real.HEADER + '\n')
               for text in real.render_all().values())


def test_check_fails_on_a_real_dataset_file_and_writing_repairs_it(
        tmp_path, capsys):
    main = make_configs_main()
    root = str(tmp_path)
    assert main(['--root', root]) == 0
    edited, removed = sorted(real.render_all())[:2]
    with open(osp.join(root, edited), 'a', encoding='utf-8') as f:
        f.write('train_cfg = dict(max_iters=1)\n')
    (tmp_path / removed).unlink()
    stale = tmp_path / FOLDER / 'fcn' / 'stale.py'
    stale.write_text('')
    capsys.readouterr()
    assert main(['--root', root, '--check']) == 1
    out = capsys.readouterr().out
    assert f'differ: {osp.join(root, edited)}' in out
    assert f'missing: {osp.join(root, removed)}' in out
    assert f'extra: {stale}' in out
    assert main(['--root', root]) == 0
    assert main(['--root', root, '--check']) == 0
    assert config_files.compare(real, root) == dict(
        differ=[], missing=[], extra=[])


def _datasets(loader: Config) -> list:
    """The datasets of a dataloader config (those of a ConcatDataset)."""
    return loader.dataset.get('datasets', [loader.dataset])


def _dataset_of(path: str) -> object:
    return DATASETS_BY_SUFFIX[osp.splitext(path)[0].rsplit('_', 1)[1]]


@pytest.fixture(scope='module')
def built():
    """The datasets built so far, by their config."""
    return {}


@pytest.mark.parametrize('model', MODEL_NAMES)
def test_every_config_loads_and_builds_its_datasets(model, data_roots,
                                                    built):
    paths = sorted(glob.glob(osp.join(PAPER, TABLE.models[model].folder,
                                      '*.py')))
    assert len(paths) == len(real.render_all()) // len(MODEL_NAMES)
    for path in paths:
        cfg = load(path)
        dataset = _dataset_of(path)
        assert cfg.model.decode_head.num_classes == dataset.num_classes
        crops = {tuple(step.crop_size)
                 for spec in _datasets(cfg.train_dataloader)
                 for step in spec.pipeline if step.type == 'RandomCrop'}
        assert crops == {tuple(cfg.model.data_preprocessor.size)} == {
            dataset.crop}
        assert cfg.train_cfg.max_iters == ITERS
        cfg = Config(cfg.to_dict())
        point_at(cfg, data_roots)
        for loader in LOADERS:
            spec = cfg[loader].dataset.to_dict()
            key = json.dumps(spec, sort_keys=True, default=str)
            if key not in built:
                built[key] = DATASETS.build(spec)
                assert len(built[key]) >= IMAGES
                sample = built[key][0]
                assert sample['data_samples'].gt_sem_seg.data.numel() > 0
    # train and val of Cityscapes and ADE20K, VOC12Aug's train (two sets
    # concatenated) and val
    assert len(built) == 6


@pytest.mark.parametrize('model', MODEL_NAMES)
def test_fine_tuning_hooks_are_the_embedded_ones(model):
    for tag in (s.tag for s in TABLE.settings):
        for layers in LAYER_COUNTS:
            embedded = Config.fromfile(
                config_path(model, 'finetune', tag, layers, root=CONFIGS))
            expected = dict(embedded.custom_hooks[0])
            if tag in REAL_CHANGES:
                expected.update(REAL_CHANGES[tag].options)
                expected = {k: v for k, v in expected.items()
                            if v is not None}
            for target in TARGETS:
                hooks = load(real_path(model, f'{tag}-l{layers}',
                                       target.suffix)).custom_hooks
                assert hooks[0] == expected
                assert hooks[1:] == embedded.custom_hooks[1:]


def _shrink(cfg: Config, work_dir: str, roots: dict, val: bool) -> None:
    """Two iterations of batch 2 at a small crop, on the tiny trees, and a
    validation at their end if ``val``."""
    cfg.work_dir = work_dir
    point_at(cfg, roots)
    cfg.model.data_preprocessor.size = (SIZE, SIZE)
    for loader in LOADERS:
        cfg[loader].update(batch_size=2, num_workers=0,
                           persistent_workers=False)
        for dataset in _datasets(cfg[loader]):
            for step in dataset.pipeline:
                if step.type in ('RandomResize', 'Resize'):
                    step.scale = (2 * SIZE, SIZE)
                if step.type == 'RandomCrop':
                    step.crop_size = (SIZE, SIZE)
    cfg.train_cfg.update(max_iters=2, val_interval=2 if val else 3)
    cfg.default_hooks.checkpoint.update(interval=2, save_optimizer=False)
    cfg.default_hooks.logger.interval = 1


def _stage(path: str, before: str, top, roots: dict,
           val: bool = False) -> dict:
    """Trains the config at ``path`` from the checkpoint of the stage
    ``before`` (its config path) and returns its final state dict."""
    cfg = Config.fromfile(path)
    name = osp.splitext(osp.basename(path))[0]
    if before is None:
        assert cfg.load_from is None
    else:
        previous = osp.splitext(osp.basename(before))[0]
        assert cfg.load_from == f'work_dirs/{previous}/iter_{ITERS}.pth'
        cfg.load_from = str(top / 'work_dirs' / previous / 'iter_2.pth')
    _shrink(cfg, str(top / 'work_dirs' / name), roots, val)
    Runner.from_cfg(cfg).train()
    return torch.load(top / 'work_dirs' / name / 'iter_2.pth',
                      map_location='cpu', weights_only=False)['state_dict']


@pytest.mark.parametrize('model', MODEL_NAMES)
def test_pretrain_calibrate_fine_tune_chain(model, data_roots, tmp_path):
    # the models alternate between the target datasets
    target = TARGETS[MODEL_NAMES.index(model) % len(TARGETS)]
    pretrain = real_path(model, 'pretrain', SOURCE.suffix)
    calib = real_path(model, 'calib', target.suffix)
    finetune = real_path(model, 'hosvd-eps0.8-l5', target.suffix)
    source = _stage(pretrain, None, tmp_path, data_roots)
    calibrated = _stage(calib, pretrain, tmp_path, data_roots)
    tuned = _stage(finetune, calib, tmp_path, data_roots, val=True)
    classifier = 'decode_head.conv_seg.weight'
    assert source[classifier].shape[0] == SOURCE.num_classes
    assert calibrated[classifier].shape[0] == tuned[classifier].shape[
        0] == target.num_classes
    # each stage started from the one before: all but the classifier is
    # frozen in calibration, the model's first layers in fine-tuning
    first = next(k for k in source if k.endswith('weight'))
    for key in source:
        if not key.startswith('decode_head.conv_seg'):
            torch.testing.assert_close(calibrated[key], source[key])
    torch.testing.assert_close(tuned[first], calibrated[first])
    assert not torch.equal(tuned[classifier], calibrated[classifier])


@pytest.mark.parametrize('model', MODEL_NAMES)
def test_subspace_configs_state_how_they_choose_their_ranks(model):
    for target in TARGETS:
        for layers in LAYER_COUNTS:
            path = real_path(model, f'hosvd-subspace-l{layers}',
                             target.suffix)
            with open(path, encoding='utf-8') as f:
                text = f.read()
            hook = load(path).custom_hooks[0]
            assert 'budget_mb' not in hook
            assert f"ranks from eps {hook['eps']:g} on the first" in text
