"""tools/train.py and tools/test.py as a user runs them (real processes)."""
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmseg.registry import DATASETS

from mmseg_hosvd.checkpoints.loading import UntrustedCheckpointError
from mmseg_hosvd.checkpoints.trust import TRUST_ENV
from mmseg_hosvd.datasets import SyntheticShapesDataset
from mmseg_hosvd.engine.config_checks import check_train_config

from ..helpers import (
    ROOT,
    SYSTEM_GLOBAL,
    RunsCommand,
    model_config,
    tiny_runner_config,
)


def run_tool(*args):
    result = subprocess.run([sys.executable] + list(args),
                            cwd=ROOT,
                            capture_output=True,
                            text=True,
                            timeout=600)
    return result.returncode, result.stdout + result.stderr


@pytest.fixture(scope='module')
def trained(tiny_data, tmp_path_factory):
    """A config dumped to disk and trained by tools/train.py."""
    work = tmp_path_factory.mktemp('tool_run')
    cfg = tiny_runner_config('deeplabv3', str(work), tiny_data,
                             [dict(type='CompressConvHook', method='hosvd',
                                   eps=0.8, num_layers=5),
                              dict(type='ActivationMemoryHook')],
                             size=32)
    path = str(work / 'tiny_hosvd.py')
    cfg.dump(path)
    code, out = run_tool('tools/train.py', path, '--work-dir', str(work))
    assert code == 0, out[-3000:]
    return path, str(work)


def test_train_writes_checkpoint_and_memory(trained):
    _, work = trained
    assert osp.isfile(osp.join(work, 'iter_2.pth'))
    with open(osp.join(work, 'activation_memory.json')) as f:
        assert json.load(f)['iterations'] == 2


def test_test_tool_prints_metrics_and_memory(trained, tmp_path):
    path, work = trained
    code, out = run_tool('tools/test.py', path, osp.join(work, 'iter_2.pth'),
                         '--work-dir', str(tmp_path), '--out',
                         str(tmp_path / 'preds'))
    assert code == 0, out[-3000:]
    assert '| background |' in out  # mmseg's per-class table
    assert 'mIoU:' in out and 'mAcc:' in out
    assert 'analytical (paper)' in out and 'measured (autograd)' in out
    with open(tmp_path / 'test_results.json') as f:
        record = json.load(f)
    assert record['finetune']['method'] == 'hosvd'
    assert record['activation_memory']['iterations'] == 2
    assert {'mIoU', 'mAcc'} <= set(record['metrics'])
    assert record['reductions']['accumulate'] == 1
    assert record['reductions']['amp'] is None
    assert 'memory reductions' not in out
    assert len(list((tmp_path / 'preds').iterdir())) == 4


def test_train_with_test_tests_the_last_checkpoint_in_its_process(
        trained, tmp_path):
    path, _ = trained
    run = tmp_path / 'run'
    # the test takes the options too: 4 test images in batches of 2
    code, out = run_tool('tools/train.py', path, '--work-dir', str(run),
                         '--test', '--cfg-options', 'val_cfg=None',
                         'val_dataloader=None', 'val_evaluator=None',
                         'test_dataloader.batch_size=2')
    assert code == 0, out[-3000:]
    assert 'Iter(train)' in out and 'Iter(test) [2/2]' in out
    assert 'analytical (paper)' in out  # the test report
    with open(run / 'test_results.json') as f:
        record = json.load(f)
    assert record['checkpoint'] == str(run / 'iter_2.pth')
    # the record tools/test.py writes for that checkpoint
    code, out = run_tool('tools/test.py', path, record['checkpoint'],
                         '--work-dir', str(tmp_path / 'alone'))
    assert code == 0, out[-3000:]
    with open(tmp_path / 'alone' / 'test_results.json') as f:
        assert json.load(f) == record


def test_train_with_test_names_a_run_that_saved_no_checkpoint(
        tiny_data, tmp_path, monkeypatch):
    from tools import train
    monkeypatch.setenv('LOCAL_RANK', '0')
    cfg = tiny_runner_config('fcn', str(tmp_path), tiny_data, max_iters=1)
    cfg.default_hooks.checkpoint = None  # MMEngine's way to drop it
    path = str(tmp_path / 'no_checkpoint.py')
    cfg.dump(path)
    with pytest.raises(FileNotFoundError,
                       match='saved no checkpoint in .*default_hooks'):
        train.main([path, '--test'])


def test_test_tool_loads_a_crafted_checkpoint_only_when_trusted(
        trained, tmp_path, monkeypatch):
    from tools import test as test_tool
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.delenv(TRUST_ENV, raising=False)
    path, work = trained
    checkpoint = torch.load(osp.join(work, 'iter_2.pth'), weights_only=False)
    marker = tmp_path / 'ran'
    checkpoint['meta']['note'] = RunsCommand(f'touch {marker}')
    crafted = str(tmp_path / 'crafted.pth')
    torch.save(checkpoint, crafted)
    args = [path, crafted, '--work-dir', str(tmp_path / 'out')]
    with pytest.raises(UntrustedCheckpointError, match=SYSTEM_GLOBAL):
        test_tool.main(args)
    assert not marker.exists()
    record = test_tool.main(args +
                            ['--cfg-options', 'trust_checkpoint=True'])
    assert marker.exists()
    assert record['finetune']['method'] == 'hosvd'


def test_amp_trains_on_cpu_in_bfloat16(trained, tmp_path):
    path, _ = trained
    code, out = run_tool('tools/train.py', path, '--amp', '--work-dir',
                         str(tmp_path))
    assert code == 0, out[-3000:]
    assert osp.isfile(tmp_path / 'iter_2.pth')
    used = Config.fromfile(str(tmp_path / 'tiny_hosvd.py'))
    assert used.optim_wrapper.type == 'AutocastOptimWrapper'
    assert used.optim_wrapper.dtype == 'bfloat16'
    # the test record says so, from the config the checkpoint was trained
    # with (the config file given to the test has no AMP)
    code, out = run_tool('tools/test.py', path,
                         str(tmp_path / 'iter_2.pth'), '--work-dir',
                         str(tmp_path / 'test'))
    assert code == 0, out[-3000:]
    assert 'memory reductions: bfloat16 autocast' in out
    with open(tmp_path / 'test' / 'test_results.json') as f:
        assert json.load(f)['reductions']['amp'] == 'bfloat16'


def test_missing_generated_data_says_how_to_make_it(tmp_path):
    cfg = model_config('pspnet')
    cfg.train_dataloader.dataset.data_root = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError,
                       match='nowhere.*tools/generate_dataset.py'):
        check_train_config(cfg)


class MyShapesDataset(SyntheticShapesDataset):
    """A user's dataset built on the generated one."""


def test_a_dataset_subclass_gets_its_base_class_hint(tmp_path):
    DATASETS.register_module(module=MyShapesDataset, force=True)
    cfg = model_config('pspnet')
    cfg.train_dataloader.dataset.type = 'MyShapesDataset'
    cfg.train_dataloader.dataset.data_root = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError,
                       match='nowhere.*of MyShapesDataset.*'
                       'tools/generate_dataset.py'):
        check_train_config(cfg)
    cfg.train_dataloader.dataset.data_root = str(tmp_path)
    with pytest.raises(FileNotFoundError,
                       match='img_dir/train.*of MyShapesDataset.*'
                       'tools/generate_dataset.py'):
        check_train_config(cfg)


def test_missing_load_from_names_the_producing_config(tiny_data, tmp_path):
    cfg = tiny_runner_config('fcn', str(tmp_path), tiny_data)
    cfg.load_from = 'work_dirs/fcn_r18-d8_calib_shapes-target-128x128/x.pth'
    with pytest.raises(FileNotFoundError,
                       match='fcn_r18-d8_calib_shapes-target-128x128.py'):
        check_train_config(cfg)


def test_config_without_dataset_is_rejected():
    cfg = Config(dict(model=dict(type='EncoderDecoder')))
    with pytest.raises(ValueError, match='no train_dataloader'):
        check_train_config(cfg)


def test_train_tool_reports_missing_data_clearly(tmp_path):
    config = osp.join(ROOT, 'configs', 'fcn',
                      'fcn_r18-d8_pretrain_shapes-source-128x128.py')
    code, out = run_tool('tools/train.py', config, '--work-dir',
                         str(tmp_path), '--cfg-options',
                         f'train_dataloader.dataset.data_root={tmp_path}/no')
    assert code != 0
    assert 'FileNotFoundError' in out and 'generate_dataset.py' in out
