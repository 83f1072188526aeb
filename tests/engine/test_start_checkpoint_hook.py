"""Every checkpoint says which checkpoint its run started from, and a
resumed run keeps the start of the run it resumes."""
import os.path as osp

import torch
from mmengine.runner import Runner

from mmseg_hosvd.engine.hooks.start_checkpoint_hook import START_KEY
from mmseg_hosvd.protocol.reporting import checkpoint_record
from mmseg_hosvd.protocol.start_groups import start_digest
from mmseg_hosvd.utils.file_digest import file_digest

from ..helpers import tiny_runner_config

HOOKS = [dict(type='CompressConvHook', method='vanilla', num_layers=5)]


def train(work_dir, tiny_data, max_iters, load_from=None, resume=False):
    cfg = tiny_runner_config('fcn', str(work_dir), tiny_data, HOOKS,
                             max_iters=max_iters)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.load_from = load_from
    cfg.resume = resume
    cfg.default_hooks.checkpoint.interval = 1
    Runner.from_cfg(cfg).train()


def start_of(checkpoint):
    return torch.load(checkpoint, weights_only=False)['meta'][START_KEY]


def test_the_start_is_recorded_and_kept_on_resume(tiny_data, tmp_path):
    train(tmp_path / 'calib', tiny_data, 1)
    calibrated = str(tmp_path / 'calib' / 'iter_1.pth')
    assert start_of(calibrated)['start'] is None  # it loaded nothing
    train(tmp_path / 'finetune', tiny_data, 2, load_from=calibrated)
    record = start_of(tmp_path / 'finetune' / 'iter_2.pth')
    assert record['start'] == dict(path=calibrated,
                                   sha256=file_digest(calibrated))
    assert record['machine']['processor']
    assert record['machine']['torch'] == torch.__version__
    # the test record keeps it, and comparisons name the start by it
    tested = checkpoint_record('configs/fcn/fcn_r18-d8_x.py', str(
        tmp_path / 'finetune' / 'iter_2.pth'), dict(mIoU=1.0, mAcc=1.0))
    assert start_digest(tested) == file_digest(calibrated)[:8]
    # resumed from its own iteration 2, not started from it
    train(tmp_path / 'finetune', tiny_data, 3, load_from=calibrated,
          resume=True)
    assert start_of(tmp_path / 'finetune' / 'iter_3.pth')['start'] == (
        record['start'])


def test_the_digest_is_of_the_bytes(tmp_path):
    one, two = tmp_path / 'one', tmp_path / 'two'
    one.write_bytes(b'a' * 3_000_000)
    two.write_bytes(b'a' * 2_999_999 + b'b')
    assert file_digest(str(one)) != file_digest(str(two))
    assert len(file_digest(str(one))) == 64
    assert osp.getsize(one) == osp.getsize(two)
