"""The protocol runner's planning and its skip-what-is-done logic."""
import json
import os
import time

from mmseg_hosvd import protocol

from ..helpers import CONFIGS


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
    os.makedirs(os.path.dirname(checkpoint))
    open(checkpoint, 'w').close()
    messages = []
    assert protocol.ensure_trained(config, messages.append) == checkpoint
    record = dict(checkpoint=checkpoint, metrics=dict(mIoU=1.0))
    time.sleep(0.01)
    with open(os.path.join(protocol.work_dir(config), 'test_results.json'),
              'w') as f:
        json.dump(record, f)
    assert protocol.ensure_tested(config, checkpoint,
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
    assert protocol.dataset_ready(root)
    assert messages[-1] == f'dataset: reusing {root}'
