"""Checkpoints under faults: --resume of a config with load_from, a disk
that fills up, a broken pointer, leftovers of killed writes, SIGKILL at
random points. Real Runners, real processes, real files."""
import errno
import os
import os.path as osp
import shutil
import subprocess
import sys
import zipfile

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mmseg_hosvd.engine.config_checks import check_load_from
from mmseg_hosvd.engine.hooks import use_safe_checkpoint_hook

from ..helpers import ROOT, tiny_runner_config
from ..kill_resume import (
    final_weights,
    fine_tuning_runs,
    run_with_kills,
    temporaries,
)
from .test_faults import assert_same_weights, train_killed_then_resumed

#: A fine-tuned convolution of the shipped HOSVD config (DeepLabV3, 5).
FINE_TUNED = 'decode_head.bottleneck.conv.weight'


def moved(weights: dict, start: str) -> float:
    """How far ``FINE_TUNED`` moved from the ``start`` checkpoint."""
    before = torch.load(start, weights_only=False)['state_dict']
    return float((weights[FINE_TUNED] - before[FINE_TUNED]).abs().max())


def test_resume_continues_the_work_dirs_run_not_load_from(tiny_data,
                                                          tmp_path):
    """The shipped fine-tuning config sets load_from; killed by SIGKILL
    after iteration 3 and resumed, it ends where an uninterrupted run
    ends (MMEngine alone would resume from load_from, at its iteration)."""
    straight, killed = fine_tuning_runs(tiny_data, str(tmp_path), iters=4)
    Runner.from_cfg(Config.fromfile(straight.config)).train()
    expected = final_weights(straight, 4)
    resumed = train_killed_then_resumed(Config.fromfile(killed.config),
                                        tmp_path)
    assert_same_weights(resumed, expected)
    assert moved(resumed, str(tmp_path / 'start' / 'iter_2.pth')) > 1e-5


def small_run(tiny_data, work_dir, max_iters, keep=2):
    cfg = tiny_runner_config('fcn', str(work_dir), tiny_data, hooks=[],
                             max_iters=max_iters)
    cfg.default_hooks.checkpoint.interval = 1
    cfg.default_hooks.checkpoint.max_keep_ckpts = keep
    cfg.train_cfg.val_interval = max_iters + 1
    return cfg


def test_resume_passes_over_a_broken_pointer_and_removes_leftovers(
        tiny_data, tmp_path):
    """An empty last_checkpoint (a kill inside its old in-place write), a
    partial iter_4.pth and hidden temporaries of killed writes: the run
    resumes from the latest whole checkpoint and removes the leftovers."""
    Runner.from_cfg(small_run(tiny_data, tmp_path, 3)).train()
    (tmp_path / 'last_checkpoint').write_text('')
    whole = (tmp_path / 'iter_3.pth').read_bytes()
    (tmp_path / 'iter_4.pth').write_bytes(whole[:len(whole) // 2])
    leftovers = ['.iter_4.pth.k2j4_x9a.tmp', '.last_checkpoint.0a1b2c3d.tmp']
    for name in leftovers:
        (tmp_path / name).write_bytes(b'\0' * 1024)
    (tmp_path / '.notes.tmp').write_text('not ours')

    cfg = small_run(tiny_data, tmp_path, 5)
    cfg.resume = True
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 5
    log = open(runner.logger.log_file).read()
    assert 'last_checkpoint is empty' in log
    assert f'from its latest checkpoint {tmp_path}/iter_3.pth' in log
    assert temporaries(str(tmp_path)) == ['.notes.tmp']
    assert zipfile.is_zipfile(tmp_path / 'iter_4.pth')
    assert (tmp_path / 'last_checkpoint').read_text() == str(
        tmp_path / 'iter_5.pth')


def test_resume_of_an_empty_work_dir_starts_from_load_from(
        tiny_data, tmp_path):
    """MMEngine would resume load_from's run at its iteration (2 of 2:
    nothing trained); here it starts a new run from its weights."""
    Runner.from_cfg(small_run(tiny_data, tmp_path / 'start', 2)).train()
    cfg = small_run(tiny_data, tmp_path / 'new', 2)
    cfg.load_from = str(tmp_path / 'start' / 'iter_2.pth')
    cfg.resume = True
    Runner.from_cfg(cfg).train()
    saved = [name for name in os.listdir(tmp_path / 'new')
             if name.endswith('.pth')]
    assert sorted(saved) == ['iter_1.pth', 'iter_2.pth']


FILLER = '''
import os.path as osp
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class FillDiskTestHook(Hook):
    """Once iteration ``after`` is saved, another program holds that
    checkpoint open (removing it then frees no space) and fills the disk."""

    priority = 'LOWEST'

    def __init__(self, after):
        self.after = after

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 != self.after:
            return
        self.held = open(
            osp.join(runner.work_dir, f'iter_{self.after}.pth'), 'rb')
        with open(osp.join(runner.work_dir, 'filler'), 'wb',
                  buffering=0) as f:
            try:
                while True:
                    f.write(bytes(1 << 16))
            except OSError:
                pass
'''


def namespaces_mount_tmpfs() -> bool:
    """Whether this user can mount a tmpfs in a mount namespace."""
    probe = subprocess.run(
        ['unshare', '-rm', 'sh', '-c', 'mount -t tmpfs tmpfs /mnt'],
        capture_output=True) if shutil.which('unshare') else None
    return probe is not None and probe.returncode == 0


def fill_up_a_tmpfs(config, work, out, env):
    """Trains in a 256 MB tmpfs mounted at ``work`` in a mount namespace
    of its own; copies what is left (but the filler) to ``out``."""
    script = (f'mount -t tmpfs -o size=256m tmpfs {work} && '
              f'{sys.executable} tools/train.py {config} --work-dir {work} '
              f'> {out}.log 2>&1; echo $? > {out}.rc; rm -f {work}/filler; '
              f'cp -a {work}/. {out}/')
    os.makedirs(out)
    subprocess.run(['unshare', '-rm', 'sh', '-c', script], cwd=ROOT,
                   env=env, check=True, timeout=600)
    return int(open(f'{out}.rc').read()), open(f'{out}.log').read()


def fill_up_a_quota(config, work, out, monkeypatch):
    """Where no tmpfs can be mounted: the same run in this process, every
    write refused with ENOSPC once the filler is there."""
    real_fsync = os.fsync

    def fsync_unless_full(fd):
        if osp.exists(osp.join(work, 'filler')):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, 'fsync', fsync_unless_full)
    cfg = Config.fromfile(config)
    use_safe_checkpoint_hook(cfg)
    try:
        Runner.from_cfg(cfg).train()
        returncode, message = 0, ''
    except OSError as error:
        returncode, message = 1, str(error)
    os.remove(osp.join(work, 'filler'))
    shutil.copytree(work, out)
    return returncode, message


def test_a_full_disk_keeps_the_last_checkpoint_and_its_pointer(
        tiny_data, tmp_path, monkeypatch):
    """max_keep_ckpts=1; after iteration 1 is saved the disk fills up.
    MMEngine removes iter_1.pth, fails to write iter_2.pth and is left with
    no checkpoint; here the run stops naming the kept iter_1.pth."""
    (tmp_path / 'filler_hook.py').write_text(FILLER)
    monkeypatch.syspath_prepend(str(tmp_path))
    work = tmp_path / 'disk'
    work.mkdir()
    out = str(tmp_path / 'left')
    cfg = small_run(tiny_data, work, 3, keep=1)
    cfg.default_hooks.logger.interval = 100
    cfg.custom_imports['imports'].append('filler_hook')
    cfg.custom_hooks = [dict(type='FillDiskTestHook', after=1)]
    config = str(tmp_path / 'full_disk.py')
    cfg.dump(config)
    if namespaces_mount_tmpfs():
        returncode, output = fill_up_a_tmpfs(
            config, work, out,
            dict(os.environ, PYTHONPATH=f'{tmp_path}:{ROOT}'))
    else:
        returncode, output = fill_up_a_quota(config, work, out, monkeypatch)
    assert returncode != 0
    assert (f'Saving checkpoint {work}/iter_2.pth at iteration 2 failed: '
            'No space left on device (ENOSPC). Nothing was removed. The '
            f'previous checkpoint {work}/iter_1.pth and last_checkpoint '
            'naming it are kept') in output
    left = os.listdir(out)
    assert 'iter_2.pth' not in left
    assert zipfile.is_zipfile(osp.join(out, 'iter_1.pth'))
    assert open(osp.join(out, 'last_checkpoint')).read() == (
        f'{work}/iter_1.pth')
    assert temporaries(out) == []


def test_kills_at_random_points_resume_to_the_same_weights(tiny_data,
                                                           tmp_path):
    """SIGKILL at random points of a fine-tuning run with a checkpoint
    every iteration (inside and between writes), --resume after each."""
    iters = 8
    straight, killed = fine_tuning_runs(tiny_data, str(tmp_path), iters)
    Runner.from_cfg(Config.fromfile(straight.config)).train()
    result = run_with_kills(killed.config, killed.work_dir, kills=3, seed=0,
                            spread=1.0, deadline=600)
    assert result['returncode'] == 0
    assert_same_weights(final_weights(killed, iters),
                        final_weights(straight, iters))
    assert temporaries(killed.work_dir) == []


def test_a_plain_checkpoint_hook_is_made_safe():
    cfg = Config(dict(default_hooks=dict(checkpoint=dict(
        type='CheckpointHook', interval=5, max_keep_ckpts=1))))
    assert use_safe_checkpoint_hook(cfg)
    assert cfg.default_hooks.checkpoint == dict(
        type='mmseg.SafeCheckpointHook', interval=5, max_keep_ckpts=1)
    missing = Config(dict(default_hooks=dict()))
    assert use_safe_checkpoint_hook(missing)
    assert missing.default_hooks.checkpoint.type == 'mmseg.SafeCheckpointHook'
    for kept in (None, dict(type='MyCheckpointHook')):
        cfg = Config(dict(default_hooks=dict(checkpoint=kept)))
        assert not use_safe_checkpoint_hook(cfg)
        assert cfg.default_hooks.checkpoint == kept


def test_a_resume_that_starts_anew_needs_its_load_from(tmp_path):
    cfg = Config(dict(load_from=str(tmp_path / 'calib' / 'iter_9.pth'),
                      resume=True, work_dir=str(tmp_path / 'run')))
    with pytest.raises(FileNotFoundError, match='calib/iter_9.pth'):
        check_load_from(cfg)
    os.makedirs(cfg.work_dir)
    torch.save({}, osp.join(cfg.work_dir, 'iter_1.pth'))
    check_load_from(cfg)  # continues its own run: load_from is not read
