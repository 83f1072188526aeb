"""Checkpoints load with weights_only=True and an allowlist; others are
refused unless trusted. The project's own checkpoints resume through the
Runner in tests/engine/test_runner_training.py (resume test)."""
import functools
import http.server
import os.path as osp
import pickle
import threading

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner import CheckpointLoader, Runner, load_checkpoint
from torch import nn

from mmseg_hosvd.checkpoints.loading import UntrustedCheckpointError
from mmseg_hosvd.checkpoints.trust import (
    TRUST_CONFIG_KEY,
    TRUST_ENV,
    config_trusts_checkpoints,
    trusted_checkpoints,
)
from mmseg_hosvd.datasets import TARGET_CLASSES

from .helpers import CONFIGS, SYSTEM_GLOBAL, RunsCommand

PLAIN_MMSEG_CONFIG = 'mmseg::fcn/fcn_r18-d8_4xb2-80k_cityscapes-512x1024.py'
BN = dict(type='BN', requires_grad=True)
SIZE = 64


def crafted_checkpoint(path, marker):
    """A checkpoint whose loading would create ``marker``."""
    torch.save(
        {
            'state_dict': nn.Conv2d(3, 4, 3).state_dict(),
            'meta': {
                'note': RunsCommand(f'touch {marker}')
            }
        }, path)
    return str(path)


def plain_mmseg_config(tmp_path, data_root, work_dir, max_iters):
    """mmseg's own FCN-R18 config (narrowed) on the tiny data, no
    validation, for a short CPU run."""
    base = tmp_path / 'plain_fcn.py'
    base.write_text(f'_base_ = {PLAIN_MMSEG_CONFIG!r}\n')
    cfg = Config.fromfile(str(base))
    cfg.work_dir = str(work_dir)
    cfg.model.pretrained = None
    cfg.model.data_preprocessor.size = (SIZE, SIZE)
    # a quarter of the widths: mmseg's model, cheap on a CPU
    cfg.model.backbone.update(stem_channels=16, base_channels=16)
    cfg.model.decode_head.in_channels = 128
    cfg.model.auxiliary_head.in_channels = 64
    for part in ('backbone', 'decode_head', 'auxiliary_head'):
        cfg.model[part].norm_cfg = BN
    for head in ('decode_head', 'auxiliary_head'):
        cfg.model[head].num_classes = len(TARGET_CLASSES)
        cfg.model[head].channels = 16
    loader = cfg.train_dataloader
    loader.batch_size = 2
    loader.num_workers = 0
    loader.persistent_workers = False
    for step in loader.dataset.pipeline:
        if step['type'] == 'RandomResize':
            step['scale'] = (SIZE, SIZE)
        if step['type'] == 'RandomCrop':
            step['crop_size'] = (SIZE, SIZE)
    loader.dataset = dict(
        type='BaseSegDataset',
        data_root=osp.join(data_root, 'target'),
        metainfo=dict(classes=TARGET_CLASSES),
        img_suffix='.png',
        seg_map_suffix='.png',
        data_prefix=dict(img_path='img_dir/train',
                         seg_map_path='ann_dir/train'),
        pipeline=loader.dataset.pipeline)
    for part in ('val', 'test'):
        cfg[f'{part}_dataloader'] = cfg[f'{part}_cfg'] = None
        cfg[f'{part}_evaluator'] = None
    cfg.train_cfg.max_iters = max_iters
    cfg.default_hooks.checkpoint.interval = 1
    cfg.default_hooks.logger.interval = 1
    cfg.experiment_name = f'plain_fcn_{max_iters}'
    return cfg


def test_plain_mmseg_checkpoint_resumes_through_the_runner(
        tiny_data, tmp_path, monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    work = tmp_path / 'work'
    Runner.from_cfg(plain_mmseg_config(tmp_path, tiny_data, work, 1)).train()
    path = str(work / 'iter_1.pth')
    # the MessageHub state and numpy scalars are beyond torch's defaults
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    second = plain_mmseg_config(tmp_path, tiny_data, work, 2)
    second.resume = True
    runner = Runner.from_cfg(second)
    runner.train()
    assert runner.iter == 2
    assert len(runner.message_hub.get_scalar('train/loss').data[0]) == 2
    loaded = CheckpointLoader.load_checkpoint(path)
    assert loaded['optimizer']['state']  # SGD momentum buffers
    assert isinstance(loaded['message_hub']['runtime_info']['eta'],
                      np.floating)


def test_crafted_checkpoint_is_refused_naming_the_global(tmp_path,
                                                          monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    marker = tmp_path / 'ran'
    path = crafted_checkpoint(tmp_path / 'evil.pth', marker)
    with pytest.raises(UntrustedCheckpointError) as refused:
        load_checkpoint(nn.Conv2d(3, 4, 3), path)
    message = str(refused.value)
    assert SYSTEM_GLOBAL in message and 'evil.pth' in message
    assert f'{TRUST_ENV}=1' in message and TRUST_CONFIG_KEY in message
    assert refused.value.unsafe_globals == (SYSTEM_GLOBAL, )
    assert not marker.exists()


@pytest.mark.parametrize('opt_in', ['environment', 'context'])
def test_trusted_crafted_checkpoint_loads(tmp_path, monkeypatch, opt_in):
    marker = tmp_path / 'ran'
    path = crafted_checkpoint(tmp_path / 'evil.pth', marker)
    model = nn.Conv2d(3, 4, 3)
    if opt_in == 'environment':
        monkeypatch.setenv(TRUST_ENV, '1')
        load_checkpoint(model, path)
    else:
        monkeypatch.delenv(TRUST_ENV, raising=False)
        with trusted_checkpoints():
            load_checkpoint(model, path)
    assert marker.exists()


def test_allowlist_is_scoped_to_the_load(tmp_path, monkeypatch):
    """The user's own allowlist entries stay; nothing is added for good."""
    monkeypatch.delenv(TRUST_ENV, raising=False)
    path = str(tmp_path / 'hub.pth')
    torch.save({'eta': np.float64(1.5), 'values': np.arange(3)}, path)
    before = set(torch.serialization.get_safe_globals())
    with torch.serialization.safe_globals([np.ndarray]):
        loaded = CheckpointLoader.load_checkpoint(path)
        assert np.ndarray in torch.serialization.get_safe_globals()
    assert loaded['eta'] == 1.5 and loaded['values'].tolist() == [0, 1, 2]
    assert set(torch.serialization.get_safe_globals()) == before
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)


def test_loads_in_several_threads_keep_their_allowlist(tmp_path,
                                                      monkeypatch):
    """tools/plan.py reads its probes' checkpoints from several threads: a
    load must not lose the allowlist when another one, which entered while
    it was there, exits."""
    monkeypatch.delenv(TRUST_ENV, raising=False)
    path = str(tmp_path / 'hub.pth')
    torch.save({'message_hub': {'log_scalars': {
        'loss': HistoryBuffer([1.0, 2.0], [1, 1])}}, 'values': np.arange(3)},
        path)
    failures = []

    def load_many():
        for _ in range(20):
            try:
                loaded = CheckpointLoader.load_checkpoint(path)
                assert loaded['values'].tolist() == [0, 1, 2]
            except Exception as error:  # any failure fails the test
                failures.append(error)

    threads = [threading.Thread(target=load_many) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_only_history_buffer_statistics_may_be_read_with_getattr(
        tmp_path, monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)

    class ReadsAttribute:

        def __reduce__(self):
            return getattr, (np.ndarray, 'tofile')

    path = str(tmp_path / 'getattr.pth')
    torch.save({'x': ReadsAttribute()}, path)
    with pytest.raises(UntrustedCheckpointError, match="'tofile'"):
        CheckpointLoader.load_checkpoint(path)


def test_other_history_buffer_attributes_are_refused(tmp_path,
                                                    monkeypatch):
    """HistoryBuffer itself is allowlisted: ``getattr`` on it must still
    give only its four statistics, not e.g. its ``update`` method."""
    monkeypatch.delenv(TRUST_ENV, raising=False)

    class ReadsMethod:

        def __reduce__(self):
            return getattr, (HistoryBuffer, 'update')

    path = str(tmp_path / 'update.pth')
    torch.save({'x': ReadsMethod()}, path)
    with pytest.raises(UntrustedCheckpointError,
                       match=r"getattr\(.*HistoryBuffer.*, 'update'\) is not "
                       'allowed'):
        CheckpointLoader.load_checkpoint(path)


def test_url_checkpoints_are_checked_like_local_files(tmp_path, monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    served = tmp_path / 'served'
    served.mkdir()
    marker = tmp_path / 'ran'
    crafted_checkpoint(served / 'evil.pth', marker)
    torch.save({'meta': {'seed': np.int64(3)}}, served / 'good.pth')
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f'http://127.0.0.1:{server.server_address[1]}'
    try:
        good = CheckpointLoader.load_checkpoint(f'{url}/good.pth')
        with pytest.raises(UntrustedCheckpointError, match=SYSTEM_GLOBAL):
            CheckpointLoader.load_checkpoint(f'{url}/evil.pth')
    finally:
        server.shutdown()
    assert good['meta']['seed'] == 3
    assert not marker.exists()


def test_bad_opt_in_values_are_named(monkeypatch, tmp_path):
    monkeypatch.setenv(TRUST_ENV, 'yes')
    path = crafted_checkpoint(tmp_path / 'evil.pth', tmp_path / 'ran')
    with pytest.raises(ValueError, match=f"{TRUST_ENV}.*'yes'"):
        CheckpointLoader.load_checkpoint(path)
    cfg = Config.fromfile(osp.join(CONFIGS, '_base_', 'default_runtime.py'))
    assert config_trusts_checkpoints(cfg) is False
    cfg[TRUST_CONFIG_KEY] = 'yes'
    with pytest.raises(TypeError, match=f"{TRUST_CONFIG_KEY}.*'yes'"):
        config_trusts_checkpoints(cfg)
