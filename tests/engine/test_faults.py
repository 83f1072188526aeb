"""Faults: another model's checkpoint, divergence, kills while training or
saving; nothing is silently lost or trained wrong."""
import hashlib
import os
import os.path as osp
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmseg.registry import HOOKS

from mmseg_hosvd.engine import AtomicLocalBackend
from mmseg_hosvd.engine.hooks.unwrap import unwrap_model

from ..helpers import ROOT, tiny_runner_config


def hooks(method='hosvd'):
    return [
        dict(type='CompressConvHook', method=method, num_layers=5),
        dict(type='ActivationMemoryHook')
    ]


def test_checkpoint_of_another_model_is_refused(tiny_data, tmp_path):
    fcn = tiny_runner_config('fcn', str(tmp_path / 'fcn'), tiny_data,
                             hooks())
    Runner.from_cfg(fcn).train()
    other = tiny_runner_config('deeplabv3', str(tmp_path / 'dlv3'),
                               tiny_data, hooks())
    other.load_from = str(tmp_path / 'fcn' / 'iter_2.pth')
    with pytest.raises(ValueError, match=r'iter_2.pth does not fit this '
                       r'model: \d+ missing .* another model'):
        Runner.from_cfg(other).train()


def test_guards_stay_when_a_config_sets_its_own_custom_hooks(
        tiny_data, tmp_path):
    """The guards live in default_hooks, which MMEngine merges."""
    cfg = tiny_runner_config('fcn', str(tmp_path), tiny_data, [
        dict(type='CompressConvHook', method='vanilla', num_layers=5)
    ])
    kinds = [type(h).__name__ for h in Runner.from_cfg(cfg).hooks]
    assert 'CheckpointFitHook' in kinds and 'FiniteLossHook' in kinds
    # the loss check runs before the checkpoint is saved
    assert kinds.index('FiniteLossHook') < kinds.index('SafeCheckpointHook')


@HOOKS.register_module()
class KeepStartWeightsTestHook(Hook):
    """Copies the model's state when training starts (after loading)."""

    priority = 'HIGHEST'

    def before_train(self, runner):
        self.state = {
            k: v.detach().clone()
            for k, v in unwrap_model(runner.model).state_dict().items()
        }


def test_a_different_classifier_is_accepted(tiny_data, tmp_path):
    """Calibrating to a dataset with other classes replaces conv_seg."""
    first = tiny_runner_config('fcn', str(tmp_path / 'a'), tiny_data,
                               hooks())
    Runner.from_cfg(first).train()
    keep = dict(type='KeepStartWeightsTestHook')
    second = tiny_runner_config('fcn', str(tmp_path / 'b'), tiny_data,
                                hooks() + [keep])
    second.model.decode_head.num_classes = 10
    second.load_from = str(tmp_path / 'a' / 'iter_2.pth')
    runner = Runner.from_cfg(second)
    runner.train()
    start = next(h for h in runner.hooks
                 if isinstance(h, KeepStartWeightsTestHook)).state
    loaded = torch.load(second.load_from, weights_only=False)['state_dict']
    classifier = 'decode_head.conv_seg.'
    # the new classifier has 10 classes, the checkpoint's another count
    assert start[classifier + 'weight'].shape[0] == 10
    assert loaded[classifier + 'weight'].shape[0] != 10
    # everything else starts from the checkpoint, bit for bit
    rest = [k for k in start if not k.startswith(classifier)]
    assert len(rest) == len(start) - 2
    assert all(torch.equal(start[k], loaded[k]) for k in rest)


def test_divergence_stops_and_keeps_the_last_checkpoint(tiny_data,
                                                         tmp_path):
    """lr 1e30 from iteration 2 on: the weights that step leaves are never
    saved, those of iteration 1 are kept."""
    cfg = tiny_runner_config('fcn', str(tmp_path), tiny_data,
                             hooks('vanilla'), max_iters=4)
    cfg.param_scheduler = dict(type='MultiStepLR', by_epoch=False,
                               milestones=[1], gamma=1e32)
    cfg.default_hooks.checkpoint.interval = 1
    with pytest.raises(FloatingPointError,
                       match=r"model's parameter norm is .* at iteration 2: "
                       r'training diverged.*iter_1.pth, is kept'):
        Runner.from_cfg(cfg).train()
    assert osp.isfile(tmp_path / 'iter_1.pth')
    assert not osp.exists(tmp_path / 'iter_2.pth')


class _NanGradientHook(Hook):
    """Turns one gradient of iteration 2 into NaN before the optimizer
    step: the loss of that iteration stays finite."""

    def __init__(self):
        self.calls = 0

    def _nan_grad(self, module, grad_input, grad_output):
        self.calls += 1
        if self.calls == 2:
            return tuple(g * float('nan') if g is not None else None
                         for g in grad_input)
        return None

    def before_train(self, runner):
        head = unwrap_model(runner.model).decode_head
        head.conv_seg.register_full_backward_hook(self._nan_grad)


def test_a_nan_gradient_with_a_finite_loss_stops_before_a_save(tiny_data,
                                                                tmp_path):
    cfg = tiny_runner_config('fcn', str(tmp_path), tiny_data,
                             hooks('vanilla'), max_iters=4)
    cfg.default_hooks.checkpoint.interval = 1
    runner = Runner.from_cfg(cfg)
    runner.register_hook(_NanGradientHook())
    with pytest.raises(FloatingPointError,
                       match=r'parameter .* holds NaN or Inf after the '
                       r'optimizer step .* at iteration 2: training '
                       r'diverged.*iter_1.pth, is kept'):
        runner.train()
    assert osp.isfile(tmp_path / 'iter_1.pth')
    assert not osp.exists(tmp_path / 'iter_2.pth')


def test_divergence_leaves_autograd_unmetered(tiny_data, tmp_path):
    """FiniteLossHook raises between two ActivationMemoryHook calls; the
    meter's saved-tensor hooks must not outlive the run."""
    cfg = tiny_runner_config('fcn', str(tmp_path), tiny_data,
                             hooks('vanilla'))
    cfg.optim_wrapper.optimizer.lr = 1e30
    with pytest.raises(FloatingPointError, match='training diverged'):
        Runner.from_cfg(cfg).train()
    assert torch._C._autograd._top_saved_tensors_default_hooks(False) is None
    # autograd's own in-place check (it names the op) is back
    x = torch.randn(2, 3, requires_grad=True)
    y = x.exp()
    y.add_(1)
    with pytest.raises(RuntimeError, match='which is output 0 of Exp'):
        y.sum().backward()


def deterministic_config(tiny_data, work_dir, max_iters):
    """Fine-tuning without random augmentation (with it: the test of
    SeededIterBasedTrainLoop below)."""
    cfg = tiny_runner_config('fcn', work_dir, tiny_data, hooks(),
                             max_iters=max_iters)
    cfg.train_dataloader.dataset.pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='Resize', scale=(64, 64), keep_ratio=False),
        dict(type='PackSegInputs')
    ]
    cfg.default_hooks.checkpoint.interval = 2
    cfg.train_cfg.val_interval = 100
    return cfg


KILLER = '''
import os
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class KillAtIterationTestHook(Hook):
    """Kills the process, like a power cut, after iteration ``at``."""

    priority = 'LOWEST'

    def __init__(self, at):
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.at:
            os.kill(os.getpid(), 9)
'''


def train_killed_then_resumed(cfg, tmp_path, resumed_loader=None):
    """Trains ``cfg`` (4 iterations, a checkpoint every 2) with
    tools/train.py, killed after iteration 3, then resumes it with
    ``--resume`` and ``resumed_loader`` merged into its train_dataloader.

    Returns:
        The weights of the resumed run's last checkpoint.
    """
    (tmp_path / 'killer_hook.py').write_text(KILLER)
    work = cfg.work_dir
    cfg.custom_imports['imports'].append('killer_hook')
    cfg.custom_hooks.append(dict(type='KillAtIterationTestHook', at=3))
    path = str(tmp_path / 'killed.py')
    cfg.dump(path)
    env = dict(os.environ, PYTHONPATH=f'{tmp_path}:{ROOT}')
    first = subprocess.run([sys.executable, 'tools/train.py', path],
                           cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=600)
    assert first.returncode == -signal.SIGKILL, first.stderr[-2000:]
    assert osp.isfile(osp.join(work, 'iter_2.pth'))
    assert not osp.exists(osp.join(work, 'iter_4.pth'))

    cfg.custom_hooks = cfg.custom_hooks[:-1]
    cfg.train_dataloader.update(resumed_loader or {})
    cfg.dump(path)
    second = subprocess.run([sys.executable, 'tools/train.py', path,
                             '--resume'], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert 'resumed' in (second.stdout + second.stderr).lower()
    return torch.load(osp.join(work, 'iter_4.pth'),
                      weights_only=False)['state_dict']


def assert_same_weights(resumed, expected):
    assert resumed.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(resumed[key], expected[key])


def test_killed_run_resumes_to_the_same_weights(tiny_data, tmp_path):
    straight = deterministic_config(tiny_data, str(tmp_path / 'straight'),
                                    max_iters=4)
    Runner.from_cfg(straight).train()
    expected = torch.load(tmp_path / 'straight' / 'iter_4.pth',
                          weights_only=False)['state_dict']

    cfg = deterministic_config(tiny_data, str(tmp_path / 'killed'),
                               max_iters=4)
    assert_same_weights(train_killed_then_resumed(cfg, tmp_path), expected)


def random_config(tiny_data, work_dir, workers):
    """Fine-tuning with the protocol's random resize, crop and flip, and
    dropout in the decode head, loading with ``workers`` workers."""
    cfg = tiny_runner_config('fcn', work_dir, tiny_data, hooks('vanilla')[:1],
                             max_iters=4)
    steps = {step['type'] for step in cfg.train_dataloader.dataset.pipeline}
    assert {'RandomResize', 'RandomCrop', 'RandomFlip'} <= steps
    cfg.model.decode_head.dropout_ratio = 0.1
    cfg.train_dataloader.num_workers = workers
    cfg.train_dataloader.persistent_workers = workers > 0
    cfg.default_hooks.checkpoint.interval = 2
    cfg.train_cfg.val_interval = 100
    return cfg


def test_killed_run_with_random_augmentation_resumes_to_the_same_weights(
        tiny_data, tmp_path):
    """The killed run loads with two prefetching workers, its resumption
    and the uninterrupted run in the main process, where dropout draws from
    the same generators: SeededIterBasedTrainLoop, the schedules' loop,
    seeds each sample and iteration from its number, so none of this
    matters."""
    straight = random_config(tiny_data, str(tmp_path / 'straight'), 0)
    Runner.from_cfg(straight).train()
    expected = torch.load(tmp_path / 'straight' / 'iter_4.pth',
                          weights_only=False)['state_dict']

    cfg = random_config(tiny_data, str(tmp_path / 'killed'), 2)
    resumed = train_killed_then_resumed(
        cfg, tmp_path, dict(num_workers=0, persistent_workers=False))
    assert_same_weights(resumed, expected)


WRITER = '''
import sys
sys.path.insert(0, {root!r})
import mmseg_hosvd
from mmengine.fileio import get_file_backend
backend = get_file_backend({path!r})
payload = bytes(range(256)) * ({size} // 256)
while True:
    backend.put(payload, {path!r})
'''


def test_a_save_killed_midway_never_replaces_the_good_file(tmp_path):
    path = str(tmp_path / 'iter_2.pth')
    size = 64 * 2**20
    payload = bytes(range(256)) * (size // 256)
    good = hashlib.sha256(payload).hexdigest()
    script = textwrap.dedent(WRITER).format(root=ROOT, path=path, size=size)
    for delay in (0.05, 0.13, 0.31):
        process = subprocess.Popen([sys.executable, '-c', script])
        deadline = time.time() + 120
        while not osp.isfile(path) and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(delay)  # somewhere inside a later save
        process.send_signal(signal.SIGKILL)
        process.wait()
        with open(path, 'rb') as f:
            assert hashlib.sha256(f.read()).hexdigest() == good
        os.remove(path)


def test_atomic_put_leaves_no_temporary_files(tmp_path):
    backend = AtomicLocalBackend()
    target = tmp_path / 'sub' / 'ckpt.pth'
    backend.put(b'first', target)
    backend.put(b'second', target)
    assert target.read_bytes() == b'second'
    assert os.listdir(tmp_path / 'sub') == ['ckpt.pth']
