"""Faults: a divergence that stays finite, exploding weights, and
checkpoints that do not load or belong to another model, in real Runners:
each stops naming the iteration, the values or the file, and no checkpoint
of diverged weights is called kept."""
import os
import re
import shutil

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmseg_hosvd.checkpoints.loading import UnreadableCheckpointError
from mmseg_hosvd.engine.hooks import FiniteLossHook
from mmseg_hosvd.engine.hooks.divergence_checkpoints import checkpoint_verdict

from ..helpers import tiny_runner_config

VANILLA = [dict(type='CompressConvHook', method='vanilla', num_layers=5)]
#: A number as the messages print it (``%g``-like).
NUMBER = r'([-+]?[\d.]+(?:e[-+]\d+)?|nan|inf)'


def config(tiny_data, work_dir, lr, max_iters, hooks=VANILLA, **finite):
    """The fine-tuning config at ``lr``, a checkpoint every iteration,
    ``finite`` as FiniteLossHook's options."""
    cfg = tiny_runner_config('fcn', str(work_dir), tiny_data, list(hooks),
                             max_iters=max_iters)
    cfg.optim_wrapper.optimizer.lr = lr
    cfg.default_hooks.checkpoint.interval = 1
    cfg.default_hooks.finite_loss.update(finite)
    return cfg


def train_until_it_stops(cfg, *hooks):
    """Trains; returns the runner and the FloatingPointError it raised."""
    runner = Runner.from_cfg(cfg)
    for hook in hooks:
        runner.register_hook(hook)
    with pytest.raises(FloatingPointError, match='training diverged') as stop:
        runner.train()
    return runner, str(stop.value)


def saved(work_dir):
    return sorted(int(m.group(1)) for m in (
        re.match(r'iter_(\d+)\.pth$', name) for name in os.listdir(work_dir))
        if m)


def test_a_finite_divergence_stops_at_its_loss_jump(tiny_data, tmp_path):
    """lr 1e3: the loss jumps from about 1.4 to about 5e4 at iteration 2,
    finite; the weights of iteration 1 made that loss, so iter_1.pth is not
    called kept."""
    cfg = config(tiny_data, tmp_path, lr=1e3, max_iters=3, min_history=1,
                 weight_growth=None)
    runner, message = train_until_it_stops(cfg)
    match = re.search(
        rf'the loss is {NUMBER} times its running median \(loss_growth=100\) '
        r'at iteration 2: training diverged and stopped '
        rf'\(loss {NUMBER}; median {NUMBER} of the last 1 losses not rising; '
        rf'parameter norm {NUMBER}, {NUMBER} at the start; of the trained '
        rf'parameters {NUMBER}, {NUMBER} at the start\); the divergence '
        r'began with the weights of iteration 1\. '
        r'The last checkpoint, .*iter_1\.pth, holds the weights of iteration '
        r'1, at or after the divergence began: do not use it\. No checkpoint '
        r'saved before it is left', message)
    assert match, message
    ratio, loss, median, norm, start, trained, trained_start = map(
        float, match.groups())
    # the losses the runner logged (before FiniteLossHook looked)
    logged = runner.message_hub.get_scalar('train/loss').data[0]
    assert loss == pytest.approx(logged[1], rel=1e-3)
    assert median == pytest.approx(logged[0], rel=1e-3)
    assert ratio == pytest.approx(loss / median, rel=1e-2) and ratio > 100
    assert norm > start > trained_start and trained > trained_start
    assert saved(tmp_path) == [1]


def test_a_finite_divergence_stops_with_the_default_options(tiny_data,
                                                            tmp_path):
    """Without the guard this run ends normally, losses in the thousands:
    the weights grow past weight_growth within a few iterations, and none
    of the checkpoints saved by then is called kept."""
    cfg = config(tiny_data, tmp_path, lr=1e3, max_iters=5)
    _, message = train_until_it_stops(cfg)
    match = re.search(
        rf"the model's parameter norm is {NUMBER} times its start "
        r'\(weight_growth=10\) at iteration (\d): .* the divergence began '
        r'with the weights of iteration 1\. The last checkpoint, '
        r'.*iter_(\d)\.pth, holds the weights of iteration \d, at or after '
        r'the divergence began: do not use it\. No checkpoint saved before '
        r'it is left', message)
    assert match, message
    ratio, stop, last = float(match.group(1)), *map(int, match.groups()[1:])
    assert ratio > 10 and stop < 5 and last == stop - 1
    assert saved(tmp_path)[-1] == last
    assert 'is kept' not in message


def test_exploding_weights_stop_before_they_are_saved(tiny_data, tmp_path):
    """lr 1e6: the first step multiplies the trained weights' norm by
    about 1500; the loss would be NaN only at iteration 4, after three
    checkpoints of exploded weights."""
    cfg = config(tiny_data, tmp_path, lr=1e6, max_iters=2)
    _, message = train_until_it_stops(cfg)
    match = re.search(
        rf"the model's parameter norm is {NUMBER} times its start "
        r'\(weight_growth=10\) at iteration 1: training diverged and '
        rf'stopped \(loss {NUMBER}; parameter norm {NUMBER}, {NUMBER} at '
        rf'the start; of the trained parameters {NUMBER}, {NUMBER} at the '
        r'start\); the divergence began with the weights of iteration 1\. '
        r'No checkpoint was saved before it\.', message)
    assert match, message
    ratio, _, norm, start, trained, trained_start = map(float,
                                                        match.groups())
    assert ratio == pytest.approx(norm / start, rel=1e-2) and ratio > 100
    assert trained > 1000 * trained_start
    assert saved(tmp_path) == []


class BlowUpWeightsHook(Hook):
    """Multiplies the trained parameters by 1e30 after iteration ``at``'s
    optimizer step, before FiniteLossHook looks at them."""

    priority = 'HIGH'

    def __init__(self, at):
        self.at = at

    @torch.no_grad()
    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.at:
            for param in runner.model.parameters():
                if param.requires_grad:
                    param.mul_(1e30)


def test_a_weight_blow_up_keeps_the_checkpoint_before_it(tiny_data,
                                                         tmp_path):
    """Weights exploded at iteration 2 (finite): they are never saved, and
    iter_1.pth, saved before, is kept."""
    cfg = config(tiny_data, tmp_path, lr=0.01, max_iters=3)
    _, message = train_until_it_stops(cfg, BlowUpWeightsHook(at=2))
    assert re.search(
        rf"the model's parameter norm is {NUMBER} times its start .* at "
        r'iteration 2: .* the divergence began with the weights of iteration '
        r'2\. The last checkpoint, .*iter_1\.pth, is kept \(iteration 1, '
        r'before the divergence began\)\.', message), message
    assert saved(tmp_path) == [1]


def test_a_checkpoint_of_diverged_weights_is_not_called_kept(tiny_data,
                                                             tmp_path):
    """Without the weight check the blown-up weights of iteration 2 are
    saved; the loss they give at iteration 3 stops the run, and
    iter_2.pth is named as diverged, iter_1.pth as kept."""
    cfg = config(tiny_data, tmp_path, lr=0.01, max_iters=3,
                 weight_growth=None, min_history=1)
    _, message = train_until_it_stops(cfg, BlowUpWeightsHook(at=2))
    assert re.search(
        r'at iteration 3: .* the divergence began with the weights of '
        r'iteration 2\. The last checkpoint, .*iter_2\.pth, holds the '
        r'weights of iteration 2, at or after the divergence began: do not '
        r'use it\. .*iter_1\.pth \(iteration 1\), saved before it, is '
        r'kept\.', message), message
    assert saved(tmp_path) == [1, 2]


@pytest.mark.parametrize('hooks', [
    VANILLA,
    [dict(type='CompressConvHook', method='vanilla', num_layers=0)],
], ids=['fine-tuning', 'calibration'])
def test_a_normal_run_with_the_defaults_finishes(tiny_data, tmp_path, hooks):
    """The shipped lr: fine-tuning 5 layers, and calibrating a freshly
    initialised classifier (whose small norm grows most)."""
    cfg = config(tiny_data, tmp_path, lr=0.01, max_iters=4, hooks=hooks)
    cfg.default_hooks.checkpoint.interval = 4
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    Runner.from_cfg(cfg).train()
    assert saved(tmp_path) == [4]


@pytest.fixture(scope='module')
def fcn_checkpoint(tiny_data, tmp_path_factory):
    """iter_1.pth of a 1-iteration FCN fine-tuning run."""
    work = tmp_path_factory.mktemp('fcn')
    Runner.from_cfg(tiny_runner_config('fcn', str(work), tiny_data,
                                       VANILLA, max_iters=1)).train()
    return str(work / 'iter_1.pth')


def test_an_empty_checkpoint_names_its_path(tiny_data, tmp_path):
    empty = tmp_path / 'empty.pth'
    empty.touch()
    cfg = tiny_runner_config('fcn', str(tmp_path / 'work'), tiny_data,
                             VANILLA)
    cfg.load_from = str(empty)
    with pytest.raises(UnreadableCheckpointError,
                       match=re.escape(f"Cannot load checkpoint '{empty}': "
                                       'the file is empty (0 bytes)')):
        Runner.from_cfg(cfg).train()


def test_a_truncated_checkpoint_names_its_path_and_size(
        tiny_data, tmp_path, fcn_checkpoint):
    cut = tmp_path / 'cut.pth'
    with open(fcn_checkpoint, 'rb') as f:
        data = f.read()
    cut.write_bytes(data[:len(data) // 2])
    cfg = tiny_runner_config('fcn', str(tmp_path / 'work'), tiny_data,
                             VANILLA)
    cfg.load_from = str(cut)
    with pytest.raises(UnreadableCheckpointError) as error:
        Runner.from_cfg(cfg).train()
    assert str(error.value).startswith(
        f"Cannot load checkpoint '{cut}' ({len(data) // 2} bytes): it is "
        'cut short (an interrupted save or copy) or not a checkpoint written '
        'by torch.save (RuntimeError: PytorchStreamReader failed reading zip '
        'archive')
    assert error.value.filename == str(cut)


def test_resuming_a_checkpoint_of_another_model_names_its_path(
        tiny_data, tmp_path, fcn_checkpoint):
    """Auto-resume (``load_from`` None) of a work dir whose checkpoint is
    an FCN's, with DeepLabV3."""
    work = tmp_path / 'work'
    work.mkdir()
    resumed = str(work / 'iter_1.pth')
    shutil.copy(fcn_checkpoint, resumed)
    (work / 'last_checkpoint').write_text(resumed)
    cfg = tiny_runner_config('deeplabv3', str(work), tiny_data, VANILLA,
                             max_iters=4)
    cfg.resume = True
    assert cfg.load_from is None
    with pytest.raises(ValueError, match=re.escape(resumed) +
                       r' does not fit this model: \d+ missing'):
        Runner.from_cfg(cfg).train()


def test_the_kept_checkpoint_is_read_from_what_the_work_dir_holds(
        tmp_path):
    """``last_checkpoint`` empty, naming a missing file, or another name
    than ``iter_<n>.pth``; earlier checkpoints present or not."""
    record = tmp_path / 'last_checkpoint'
    assert checkpoint_verdict(str(tmp_path), 3) == (
        'No checkpoint was saved before it. ')
    record.write_text('')
    assert checkpoint_verdict(str(tmp_path), 3) == (
        'No checkpoint was saved before it. ')
    for n in (1, 2, 4):
        torch.save({}, tmp_path / f'iter_{n}.pth')
    assert checkpoint_verdict(str(tmp_path), 3) == (
        f"{tmp_path / 'iter_2.pth'} (iteration 2), saved before it, is "
        'kept. ')
    record.write_text(str(tmp_path / 'iter_5.pth'))
    assert checkpoint_verdict(str(tmp_path), 3) == (
        f"The last checkpoint, {tmp_path / 'iter_5.pth'} (named in "
        f'{record}), is missing. {tmp_path / "iter_2.pth"} (iteration 2), '
        'saved before it, is kept. ')
    record.write_text(str(tmp_path / 'iter_4.pth'))
    assert checkpoint_verdict(str(tmp_path), 5) == (
        f"The last checkpoint, {tmp_path / 'iter_4.pth'}, is kept "
        '(iteration 4, before the divergence began). ')
    assert checkpoint_verdict(str(tmp_path), 1) == (
        f"The last checkpoint, {tmp_path / 'iter_4.pth'}, holds the weights "
        'of iteration 4, at or after the divergence began: do not use it. '
        f'No checkpoint saved before it is left in {tmp_path}. ')
    torch.save({}, tmp_path / 'best_mIoU.pth')
    record.write_text(str(tmp_path / 'best_mIoU.pth'))
    assert checkpoint_verdict(str(tmp_path), 3).startswith(
        f"The last checkpoint, {tmp_path / 'best_mIoU.pth'}, was saved at an "
        'iteration its name does not tell: check it before using it. ')


@pytest.mark.parametrize('options,match', [
    (dict(loss_growth=1), 'loss_growth must be a finite number > 1, or None '
     'to turn its check off, got 1'),
    (dict(loss_growth='100'), "loss_growth .* got '100'"),
    (dict(weight_growth=0.5), 'weight_growth must be .* got 0.5'),
    (dict(weight_growth=float('inf')), 'weight_growth must be .* got inf'),
    (dict(window=0), 'window must be an int >= 1, got 0'),
    (dict(window=2.5), 'window must be an int >= 1, got 2.5'),
    (dict(min_history=0), r'min_history must be an int in \[1, 20\], got 0'),
    (dict(window=4, min_history=5),
     r'min_history must be an int in \[1, 4\], got 5'),
    (dict(min_history=True), r'min_history must be .* got True'),
])
def test_bad_options_are_named(options, match):
    with pytest.raises(ValueError, match=match):
        FiniteLossHook(**options)
