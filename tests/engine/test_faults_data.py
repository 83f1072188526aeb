"""Faults in the data: label ids outside the classes, files that do not
decode, an empty data root; each is refused naming the file or directory."""
import os
import os.path as osp
import re
import shutil

import cv2
import pytest
import torch
from mmengine.runner import Runner
from mmseg.registry import HOOKS, MODELS

from mmseg_hosvd.engine import DataCheckError, DataCheckHook
from mmseg_hosvd.engine.config_checks import (
    check_data_roots,
    check_train_config,
)

from ..helpers import tiny_runner_config

#: The tiny model's classes and ignore index, as the errors state them.
RANGE = r'neither a class \(0\.\.7\) nor the ignore index 255'


@pytest.fixture
def data(tiny_data, tmp_path):
    """A copy of the tiny dataset, to corrupt."""
    root = str(tmp_path / 'data')
    shutil.copytree(tiny_data, root)
    return root


def data_file(root, kind, split, index):
    return osp.join(root, 'target', kind, split, f'{index:05d}.png')


def write_unknown_label(root, split, index):
    """Puts label id 200 in every other row of a label map (some rows stay
    in any crop and resize of training)."""
    path = data_file(root, 'ann_dir', split, index)
    labels = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    labels[::2] = 200
    cv2.imwrite(path, labels)
    return path


def config(root, tmp_path, max_iters=2, **check):
    """The tiny fine-tuning run, with the shipped config's DataCheckHook
    (options ``check``)."""
    cfg = tiny_runner_config(
        'fcn', str(tmp_path / 'work'), root,
        [dict(type='CompressConvHook', method='vanilla', num_layers=5)],
        max_iters=max_iters)
    cfg.default_hooks.data_check.update(check)
    return cfg


@pytest.mark.parametrize('split,phase,count', [('train', 'train', 8),
                                               ('val', 'val', 4)])
def test_unknown_label_id_is_refused_before_training(data, tmp_path, split,
                                                     phase, count):
    """Validation data too: not only at the first validation."""
    path = write_unknown_label(data, split, 3)
    with pytest.raises(DataCheckError,
                       match=rf'^before training, in 1 of {count} sampled '
                       rf'{phase} label maps: .*{RANGE}: {re.escape(path)} '
                       r'holds \[200\]\. Fix .*unknown_labels=.ignore.'):
        Runner.from_cfg(config(data, tmp_path)).train()


def test_unknown_label_id_is_refused_by_the_test_tool(data, tmp_path,
                                                      monkeypatch):
    """Instead of an mIoU computed without the pixels of id 200."""
    from tools import test as test_tool
    monkeypatch.setenv('LOCAL_RANK', '0')
    path = write_unknown_label(data, 'val', 1)
    cfg = config(data, tmp_path)
    checkpoint = str(tmp_path / 'model.pth')
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict()),
               checkpoint)
    cfg_path = str(tmp_path / 'tiny.py')
    cfg.dump(cfg_path)
    out = tmp_path / 'out'
    with pytest.raises(DataCheckError,
                       match=rf'before testing, .*{RANGE}: '
                       rf'{re.escape(path)} holds \[200\]'):
        test_tool.main([cfg_path, checkpoint, '--work-dir', str(out)])
    assert not (out / 'test_results.json').exists()


def test_a_label_map_the_scan_skips_stops_training_at_its_iteration(
        data, tmp_path):
    """The scan reads one sample (00000); every other label map is bad, so
    the first batch holds one."""
    for index in range(1, 8):
        write_unknown_label(data, 'train', index)
    cfg = config(data, tmp_path, sample_size=1)
    bad = re.escape(data_file(data, 'ann_dir', 'train', 0))[:-len('0\\.png')]
    with pytest.raises(DataCheckError,
                       match=rf'^at training iteration 1: .*{RANGE}: '
                       rf'{bad}[1-7]\.png holds \[200\]'):
        Runner.from_cfg(cfg).train()


def test_ignore_maps_unknown_ids_to_the_ignore_index(data, tmp_path):
    """Training would stop in the loss at id 200; it maps them, logs it,
    and validation counts none of them."""
    for index in range(8):
        write_unknown_label(data, 'train', index)
    val_path = write_unknown_label(data, 'val', 1)
    runner = Runner.from_cfg(
        config(data, tmp_path, max_iters=1, unknown_labels='ignore'))
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, DataCheckHook))
    pixels, files = hook.remapped['train']
    assert pixels > 0 and 1 <= len(files) <= 2  # 1 iteration of 2
    # validation loads the 64 x 64 label map unresized: 32 rows of 200
    assert hook.remapped['val'] == [32 * 64, {val_path}]
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        log = f.read()
    assert ('val mapped 2048 pixels of 1 label maps to the ignore index '
            '255' in log)
    assert f'train mapped {pixels} pixels of {len(files)} label maps' in log


@pytest.mark.parametrize('kind', ['img_dir', 'ann_dir'])
def test_a_file_that_does_not_decode_is_refused_at_start(data, tmp_path,
                                                         kind):
    path = data_file(data, kind, 'train', 5)
    with open(path, 'wb') as f:
        f.write(b'not a png')
    with pytest.raises(DataCheckError,
                       match=rf'^before training: {re.escape(path)} does '
                       'not load .*replace or remove the file'):
        Runner.from_cfg(config(data, tmp_path)).train()


def test_wrapped_datasets_are_scanned(data, tmp_path):
    """A ConcatDataset of a RepeatDataset (clean) and a dataset with an
    unknown label id."""
    path = write_unknown_label(data, 'train', 6)
    cfg = config(data, tmp_path)
    train = cfg.train_dataloader.dataset
    clean = dict(train, data_prefix=dict(img_path='img_dir/val',
                                         seg_map_path='ann_dir/val'))
    cfg.train_dataloader.dataset = dict(
        type='ConcatDataset',
        datasets=[dict(type='RepeatDataset', times=2, dataset=clean), train])
    with pytest.raises(DataCheckError,
                       match=rf'before training, in 1 of 12 sampled train .*'
                       rf'{re.escape(path)} holds \[200\]'):
        Runner.from_cfg(cfg).train()


def test_an_empty_data_root_is_refused_naming_the_directory(data, tmp_path):
    """MMEngine would fail building the dataset with "need at least one
    array to concatenate"."""
    cfg = config(data, tmp_path)
    img_dir = osp.dirname(data_file(data, 'img_dir', 'val', 0))
    for name in os.listdir(img_dir):
        os.remove(osp.join(img_dir, name))
    hint = 'generate it with: python tools/generate_dataset.py'
    empty = rf"image directory '{re.escape(img_dir)}' of " \
        rf"SyntheticShapesTargetDataset holds no images \(files ending in " \
        rf"'\.png'\); {hint}"
    with pytest.raises(FileNotFoundError, match=f'^val_dataloader: {empty}'):
        check_train_config(cfg)
    # tools/test.py's check
    with pytest.raises(FileNotFoundError,
                       match=f'^test_dataloader: {empty}'):
        check_data_roots(cfg, loaders=('test_dataloader', ))
    # the Runner built directly: the dataset's own check
    with pytest.raises(FileNotFoundError, match=f'^{empty}'):
        Runner.from_cfg(cfg).train()
    # a data root without the image directory
    shutil.rmtree(osp.join(data, 'target'))
    os.makedirs(osp.join(data, 'target'))
    with pytest.raises(FileNotFoundError,
                       match=r"^train_dataloader: image directory '.*/target/"
                       r"img_dir/train' of SyntheticShapesTargetDataset "
                       f'does not exist; {hint}'):
        check_train_config(cfg)


@pytest.mark.parametrize('options,error', [
    (dict(unknown_labels='skip'),
     r"unknown_labels must be one of \('error', 'ignore'\), got 'skip'"),
    (dict(sample_size=-1), r'sample_size must be an integer >= 0 .* got -1'),
    (dict(sample_size=2.5), r'sample_size must be .* got 2\.5'),
    (dict(sample_size=True), r'sample_size must be .* got True'),
])
def test_bad_options_are_named(options, error):
    with pytest.raises(ValueError, match=error):
        HOOKS.build(dict(type='DataCheckHook', **options))
