"""The demo's estimate of the time left, from real training log lines."""
import os

import pytest

from mmseg_hosvd.protocol import matrix as protocol
from mmseg_hosvd.protocol import runs as protocol_runs
from mmseg_hosvd.protocol.time_left import (
    ProgressLog,
    Stage,
    TimeLeft,
    parse_train_line,
)

from ..helpers import CONFIGS, ROOT, tiny_runner_config, write_checkpoint

# as tools/train.py logs it, and as the protocol's run_tool echoes it
LINE = ('2025/01/02 10:00:00 - mmengine - INFO - Iter(train) [ 20/400]  '
        'lr: 1.0000e-02  eta: 0:05:51  time: 0.6110  data_time: 0.0103  '
        'memory: 0  grad_norm: 1.3785  loss: 0.9420')


def test_a_training_line_gives_iteration_total_and_step_time():
    assert parse_train_line(LINE) == (20, 400, 0.611)
    echoed = '  ' + LINE.split(' - INFO - ')[-1][:150]
    assert parse_train_line(echoed) == (20, 400, 0.611)
    # data_time alone is not the step time
    assert parse_train_line('Iter(train) [3/9]  data_time: 0.5') == (3, 9,
                                                                      None)
    assert parse_train_line('Iter(val) [ 5/13]  eta: 0:00:02  time: 0.2') \
        is None
    assert parse_train_line('train: reusing work_dirs/x/iter_9.pth') is None


def test_stages_scale_with_the_latest_measured_step():
    time_left = TimeLeft([
        Stage('pretrain', 100, step_cost=0.5, overhead=4.),
        Stage('fine-tune', 50, step_cost=0.25, overhead=2.),
        Stage('test', 1, step_cost=3.),
    ])
    assert time_left.left() is None and time_left.summary() is None
    # 0.3 s per pretraining step: 0.6 s per reference step
    time_left.observe('pretrain', 20, 0.3)
    assert time_left.left() == pytest.approx({
        'pretrain': 80 * 0.3,
        'fine-tune': (50 * 0.25 + 2) * 0.6,
        'test': 3 * 0.6,
    })
    time_left.finish('pretrain')
    # the fine-tuning steps run slower than the pretraining ones predicted
    time_left.observe('fine-tune', 10, 0.2)
    assert time_left.left() == pytest.approx({
        'fine-tune': 40 * 0.2,
        'test': 3 * 0.8
    })
    summary = time_left.summary()
    assert summary.startswith('time left')
    assert '0.2 min (fine-tune 0.1, test 0.0 min)' in summary


def test_what_follows_the_last_step_counts_until_the_stage_finishes():
    time_left = TimeLeft([
        Stage('calibrate', 10, step_cost=0.5, overhead=4., closing=3.),
        Stage('fine-tune', 20, step_cost=1., overhead=2., closing=5.),
    ])
    time_left.observe('calibrate', 2, 0.5)  # 1 s per reference step
    assert time_left.left() == pytest.approx({
        'calibrate': 8 * 0.5 + 3,
        'fine-tune': 20 + 2 + 5,
    })
    # every step done, its test still running
    time_left.observe('calibrate', 10, 0.5)
    assert time_left.left()['calibrate'] == pytest.approx(3)
    time_left.finish('calibrate')
    assert list(time_left.left()) == ['fine-tune']


def test_bad_stages_are_named():
    with pytest.raises(ValueError, match="'a'"):
        TimeLeft([Stage('a', 1, 1.), Stage('a', 2, 1.)])
    with pytest.raises(ValueError, match="stage 'b' needs steps >= 1"):
        TimeLeft([Stage('b', 0, 1.)])
    with pytest.raises(ValueError, match="closing >= 0, got .*closing=-1"):
        TimeLeft([Stage('b', 1, 1., closing=-1.)])
    with pytest.raises(KeyError, match="unknown stage 'c'"):
        TimeLeft([Stage('a', 1, 1.)]).observe('c', 1, 0.1)


def test_demo_plans_only_the_stages_left(tmp_path, monkeypatch):
    from tools import demo
    monkeypatch.chdir(tmp_path)
    os.symlink(CONFIGS, 'configs')
    pretrain = protocol.config_path('deeplabv3', 'pretrain')
    calib = protocol.config_path('deeplabv3', 'calib')
    finetune = protocol.config_path('deeplabv3', 'finetune', 'hosvd-eps0.8',
                                    5)
    names = [s.name for s in demo.plan(pretrain, calib, finetune, False)]
    assert names == ['pretrain', 'calibrate', 'fine-tune']
    for config in (pretrain, calib):
        write_checkpoint(config, protocol.final_checkpoint(config))
    stages = demo.plan(pretrain, calib, finetune, False)
    assert [s.name for s in stages] == ['fine-tune']
    assert stages[0].steps == 120
    # its test runs in the same process, after the steps
    assert stages[0].closing == demo.STAGE_COSTS['fine-tune'][2] > 0
    # a checkpoint older than the one it starts from is trained again, and
    # so is every stage after it
    os.utime(protocol.final_checkpoint(pretrain), (2e9, 2e9))
    names = [s.name for s in demo.plan(pretrain, calib, finetune, False)]
    assert names == ['calibrate', 'fine-tune']
    # a dataset generated again (stamped later) makes everything stale
    os.makedirs('data/synthetic_shapes')
    stamp = 'data/synthetic_shapes/generated.json'
    open(stamp, 'w').close()
    os.utime(stamp, (3e9, 3e9))
    names = [s.name for s in demo.plan(pretrain, calib, finetune, False)]
    assert names == ['pretrain', 'calibrate', 'fine-tune']


def test_a_real_run_prints_the_time_left_once(tiny_data, tmp_path,
                                              monkeypatch):
    cfg = tiny_runner_config('deeplabv3', str(tmp_path), tiny_data,
                             max_iters=3)
    config = str(tmp_path / 'tiny.py')
    cfg.dump(config)
    written = []
    log = ProgressLog(
        TimeLeft([Stage('fine-tune', 3, 0.5, 1.),
                  Stage('test', 1, 2.)]), written.append)
    log.stage('fine-tune')
    monkeypatch.chdir(ROOT)
    protocol_runs.run_tool(['tools/train.py', config, '--work-dir',
                       str(tmp_path)], str(tmp_path / 'train.log'), log)
    log.stage(None)
    progress = [parse_train_line(m) for m in written]
    measured = [p for p in progress if p is not None]
    assert [p[0] for p in measured] == [1, 2, 3]
    estimates = [i for i, m in enumerate(written) if m.startswith('time left')]
    # once, right after the first line that measured a step
    assert estimates == [written.index(next(
        m for m, p in zip(written, progress, strict=True) if p and p[2])) + 1]
    # what is left of the run itself was scaled from its own step time
    first = next(p for p in measured if p[2])
    assert f'fine-tune {(3 - first[0]) * first[2] / 60:.1f}' in written[
        estimates[0]]
    assert log.time_left.finished['fine-tune']
    assert log.time_left.left() == pytest.approx(
        {'test': 2 * measured[-1][2] / 0.5})
