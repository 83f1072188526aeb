"""The protocol runner's planning and its skip-what-is-done logic."""
import argparse
import json
import os
import os.path as osp
import time

import pytest
import torch
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from mmseg_hosvd.protocol import matrix as protocol
from mmseg_hosvd.protocol import runs as protocol_runs

from ..helpers import CONFIGS, tiny_runner_config, write_checkpoint


def test_quick_subset_is_two_models_one_eps():
    from tools import run_protocol
    args = run_protocol.parse_args(['--quick'])
    assert args.models == ['deeplabv3', 'pspnet']
    assert [m for m in args.methods if 'eps' in m] == ['svd-eps0.8',
                                                       'hosvd-eps0.8']
    full = run_protocol.parse_args([])
    assert len(full.models) == 6 and full.layers == [5, 10]
    assert len(full.methods) == 5


def test_finished_training_and_test_are_reused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.symlink(CONFIGS, 'configs')
    config = protocol.config_path('fcn', 'finetune', 'hosvd-eps0.8', 5)
    checkpoint = protocol.final_checkpoint(config)
    write_checkpoint(config, checkpoint)
    messages = []
    assert protocol_runs.ensure_trained(config, messages.append) == checkpoint
    record = dict(checkpoint=checkpoint, metrics=dict(mIoU=1.0))
    time.sleep(0.01)
    with open(os.path.join(protocol.work_dir(config), 'test_results.json'),
              'w') as f:
        json.dump(record, f)
    assert protocol_runs.ensure_tested(config, checkpoint,
                                       messages.append) == record
    assert [m.split(':')[0] for m in messages] == ['train', 'test']
    assert all('reusing' in m for m in messages)


def test_dataset_is_generated_once(tmp_path):
    root = str(tmp_path / 'shapes')
    assert not protocol.dataset_ready(root)
    messages = []
    sizes = {'source': {'train': 1, 'val': 1},
             'target': {'train': 1, 'val': 1}}
    protocol.ensure_dataset(root, messages.append, sizes, 16)
    protocol.ensure_dataset(root, messages.append, sizes, 16)
    assert messages[1] == 'dataset: wrote 4 images'
    assert protocol.dataset_ready(root, sizes, 16)
    assert not protocol.dataset_ready(root)  # not the default sizes
    assert messages[-1] == f'dataset: reusing {root}'


def test_dataset_of_another_generator_or_size_is_generated_again(tmp_path):
    root = str(tmp_path / 'shapes')
    sizes = {'source': {'train': 2, 'val': 1},
             'target': {'train': 1, 'val': 1}}
    messages = []
    protocol.ensure_dataset(root, messages.append, sizes, 16)
    stamp = os.path.join(root, 'generated.json')
    with open(stamp) as f:
        written = json.load(f)
    written['version'] = 1
    with open(stamp, 'w') as f:
        json.dump(written, f)
    assert not protocol.dataset_ready(root, sizes, 16)
    protocol.ensure_dataset(root, messages.append, sizes, 16)
    assert 'version 1' in messages[2] and 'generating it again' in messages[2]
    assert protocol.dataset_ready(root, sizes, 16)
    # fewer images: the generation leaves none of the old ones behind
    smaller = {'source': {'train': 1, 'val': 1},
               'target': {'train': 1, 'val': 1}}
    protocol.ensure_dataset(root, messages.append, smaller, 16)
    train = os.path.join(root, 'source', 'img_dir', 'train')
    assert os.listdir(train) == ['00000.png']
    assert protocol.dataset_ready(root, smaller, 16)
    # an interrupted generation has no stamp
    os.remove(stamp)
    assert not protocol.dataset_ready(root, smaller, 16)


def test_checkpoint_older_than_its_data_or_start_is_trained_again(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.symlink(CONFIGS, 'configs')
    pretrain = protocol.config_path('fcn', 'pretrain')
    calib = protocol.config_path('fcn', 'calib')
    for config, made in ((pretrain, 1e9), (calib, 2e9)):
        checkpoint = protocol.final_checkpoint(config)
        write_checkpoint(config, checkpoint)
        os.utime(checkpoint, (made, made))
    calib_checkpoint = protocol.final_checkpoint(calib)
    assert protocol.stale_reason(calib, calib_checkpoint) is None
    os.utime(protocol.final_checkpoint(pretrain), (3e9, 3e9))
    assert 'it starts from' in protocol.stale_reason(calib, calib_checkpoint)
    os.utime(calib_checkpoint, (4e9, 4e9))
    os.makedirs('data/synthetic_shapes')
    stamp = 'data/synthetic_shapes/generated.json'
    open(stamp, 'w').close()
    os.utime(stamp, (5e9, 5e9))
    assert protocol.stale_reason(calib, calib_checkpoint) == (
        f'older than the dataset {stamp}')


def test_a_checkpoint_of_an_edited_config_is_trained_again(
        tiny_data, tmp_path, monkeypatch):
    """A real 2-iteration run is up to date with its config file; editing
    what defines training (not the validation interval) makes it stale."""
    monkeypatch.chdir(tmp_path)
    cfg = tiny_runner_config('fcn', str(tmp_path / 'run'), tiny_data)
    config = str(tmp_path / 'fcn_tiny.py')
    cfg.dump(config)
    Runner.from_cfg(Config.fromfile(config)).train()
    checkpoint = str(tmp_path / 'run' / 'iter_2.pth')
    assert protocol.stale_reason(config, checkpoint) is None
    edited = Config.fromfile(config)
    edited.train_cfg.val_interval = 1
    edited.dump(config)
    assert protocol.stale_reason(config, checkpoint) is None
    edited.custom_hooks[0]['eps'] = 0.9
    edited.optim_wrapper.optimizer.lr = 0.5
    edited.dump(config)
    assert protocol.stale_reason(config, checkpoint) == (
        f'trained with another custom_hooks, optim_wrapper than {config} '
        'has now')


def test_an_unreadable_checkpoint_is_trained_again(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.symlink(CONFIGS, 'configs')
    config = protocol.config_path('fcn', 'calib')
    checkpoint = protocol.final_checkpoint(config)
    write_checkpoint(config, checkpoint)
    assert protocol.stale_reason(config, checkpoint) is None
    with open(checkpoint, 'rb') as f:
        head = f.read(200)
    with open(checkpoint, 'wb') as f:  # a save cut short
        f.write(head)
    assert protocol.stale_reason(config, checkpoint).startswith(
        f'unreadable (UnreadableCheckpointError: Cannot load checkpoint '
        f'{checkpoint!r} (200 bytes): it is cut short')
    open(checkpoint, 'w').close()
    assert protocol.stale_reason(config, checkpoint).startswith(
        f'unreadable (UnreadableCheckpointError: Cannot load checkpoint '
        f'{checkpoint!r}: the file is empty (0 bytes)')
    with open(checkpoint, 'w') as f:  # not a checkpoint: never unpickled
        f.write('not a checkpoint')
    assert protocol.stale_reason(config, checkpoint).startswith(
        'unreadable (UntrustedCheckpointError: Refusing to load')
    # a checkpoint that records no config goes by file times alone
    torch.save(dict(state_dict={}), checkpoint)
    assert protocol.stale_reason(config, checkpoint) is None


def test_a_checkpoint_in_the_legacy_format_is_read(tmp_path, monkeypatch):
    # the zip format is mapped, not read; the pre-1.6 one cannot be mapped
    monkeypatch.chdir(tmp_path)
    os.symlink(CONFIGS, 'configs')
    config = protocol.config_path('fcn', 'calib')
    checkpoint = protocol.final_checkpoint(config)
    os.makedirs(osp.dirname(checkpoint))
    cfg = Config.fromfile(config)
    torch.save(dict(meta=dict(cfg=cfg.pretty_text),
                    state_dict=dict(w=torch.ones(3))), checkpoint,
               _use_new_zipfile_serialization=False)
    assert protocol.stale_reason(config, checkpoint) is None
    cfg.optim_wrapper.optimizer.lr = 0.5
    torch.save(dict(meta=dict(cfg=cfg.pretty_text), state_dict={}),
               checkpoint, _use_new_zipfile_serialization=False)
    assert protocol.stale_reason(config, checkpoint).startswith(
        'trained with another optim_wrapper')


def test_a_stage_tested_next_trains_without_validating(tmp_path,
                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.symlink(CONFIGS, 'configs')
    config = protocol.config_path('fcn', 'finetune', 'vanilla', 5)
    calls = []

    def run_tool(args, log_file, log):
        calls.append(args)
        checkpoint = protocol.final_checkpoint(config)
        os.makedirs(os.path.dirname(checkpoint), exist_ok=True)
        open(checkpoint, 'w').close()

    monkeypatch.setattr(protocol_runs, 'run_tool', run_tool)
    protocol_runs.ensure_trained(config, [].append, validate=False)
    protocol_runs.ensure_trained(config, [].append, force=True)
    assert calls == [
        ['tools/train.py', config, '--cfg-options'] +
        protocol_runs.NO_VALIDATION,
        ['tools/train.py', config],
    ]


def test_a_stage_that_trains_tests_in_the_same_process(tmp_path,
                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.symlink(CONFIGS, 'configs')
    config = protocol.config_path('fcn', 'finetune', 'vanilla', 5)
    checkpoint = protocol.final_checkpoint(config)
    record_path = osp.join(protocol.work_dir(config), 'test_results.json')
    calls = []

    def run_tool(args, log_file, log):
        calls.append(args)
        if args[0] == 'tools/train.py':
            write_checkpoint(config, checkpoint)
        if args[0] == 'tools/test.py' or '--test' in args:
            time.sleep(0.01)
            # tools/train.py --test names the checkpoint by its full path
            with open(record_path, 'w') as f:
                json.dump(dict(checkpoint=osp.abspath(checkpoint),
                               metrics=dict(mIoU=len(calls))), f)

    monkeypatch.setattr(protocol_runs, 'run_tool', run_tool)
    messages = []
    assert protocol_runs.ensure_trained_and_tested(
        config, messages.append) == dict(checkpoint=osp.abspath(checkpoint),
                                         metrics=dict(mIoU=1))
    assert calls == [['tools/train.py', config, '--test', '--cfg-options'] +
                     protocol_runs.NO_VALIDATION]
    # done: both reused, whichever way the record names the checkpoint
    record = protocol_runs.ensure_trained_and_tested(config,
                                                     messages.append)
    assert record['metrics'] == dict(mIoU=1) and len(calls) == 1
    assert messages[-2:] == [f'train: reusing {checkpoint}',
                             f'test: reusing {record_path}']
    # a record older than its checkpoint: only the test runs again
    os.utime(record_path, (1e9, 1e9))
    record = protocol_runs.ensure_trained_and_tested(config, [].append)
    assert calls[1] == ['tools/test.py', config, checkpoint]
    assert record['metrics'] == dict(mIoU=2)
    # so does a record cut short
    with open(record_path, 'w') as f:
        f.write('{"checkpoint": "work')
    record = protocol_runs.ensure_trained_and_tested(config, [].append)
    assert calls[2] == ['tools/test.py', config, checkpoint]
    assert record['metrics'] == dict(mIoU=3)
    # forced: trained and tested again, in one process
    protocol_runs.ensure_trained_and_tested(config, [].append, force=True)
    assert calls[3][:3] == ['tools/train.py', config, '--test']
    assert len(calls) == 4


def test_a_training_that_writes_no_record_is_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.symlink(CONFIGS, 'configs')
    config = protocol.config_path('fcn', 'finetune', 'vanilla', 5)

    def run_tool(args, log_file, log):
        write_checkpoint(config, protocol.final_checkpoint(config))

    monkeypatch.setattr(protocol_runs, 'run_tool', run_tool)
    with pytest.raises(RuntimeError, match='wrote no test record'):
        protocol_runs.ensure_trained_and_tested(config, [].append)


def test_a_runner_given_those_options_trains_without_validating(
        tiny_data, tmp_path):
    def validated(options, work_dir):
        cfg = tiny_runner_config('fcn', work_dir, tiny_data, max_iters=2)
        parser = argparse.ArgumentParser()  # as tools/train.py parses them
        parser.add_argument('--cfg-options', nargs='+', action=DictAction)
        cfg.merge_from_dict(parser.parse_args(options).cfg_options or {})
        runner = Runner.from_cfg(cfg)
        runner.train()
        assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
        return 'val/mIoU' in runner.message_hub.log_scalars

    assert validated([], str(tmp_path / 'with'))
    assert not validated(['--cfg-options'] + protocol_runs.NO_VALIDATION,
                         str(tmp_path / 'without'))


def test_the_protocol_configs_read_the_generated_dataset_root():
    for model in protocol.PAPER_MODELS:
        for stage in ('pretrain', 'calib'):
            cfg = Config.fromfile(protocol.config_path(model, stage,
                                                       root=CONFIGS))
            root = cfg.train_dataloader.dataset.data_root
            assert osp.dirname(root) == protocol.DATA_ROOT, root
