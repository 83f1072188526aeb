"""ConcatInPlaceHook in real training runs: the same weights as without it,
a lower fine-tuned forward, tagged as a reduction."""
import pytest
import torch
from mmengine.runner import Runner

from mmseg_hosvd.engine import ConcatInPlaceHook
from mmseg_hosvd.protocol.reporting import checkpoint_record
from mmseg_hosvd.reductions.activation_checkpoint import (
    CheckpointedForward,
    checkpoint_modules_,
)
from mmseg_hosvd.reductions.concat_in_place import (
    CONCAT_HEADS,
    concat_in_place_,
    segformer_forward,
)
from mmseg_hosvd.reductions.describe import reductions_of, reductions_tag

from ..helpers import build_model, model_config, tiny_runner_config


def train(model_name, work_dir, data, concat, method='vanilla',
          hooks=()):
    """Three iterations of the 5-layer protocol config, iteration 2
    profiled; ``hooks`` and then the hook added after the config's own."""
    cfg = tiny_runner_config(model_name, str(work_dir), data, max_iters=3)
    cfg.custom_hooks = list(cfg.custom_hooks) + [
        dict(type='StepPeakMemoryHook', iteration=2)] + list(hooks)
    if method != 'vanilla':
        cfg.custom_hooks[0].update(method=method, bits=2)
    if concat:
        cfg.custom_hooks.append(dict(type='ConcatInPlaceHook'))
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner, torch.load(work_dir / 'iter_3.pth', weights_only=False)


@pytest.mark.parametrize('method', ['vanilla', 'quantized'])
def test_segformer_trains_the_same_with_less_in_its_head(method, tiny_data,
                                                        tmp_path):
    plain, plain_ckpt = train('segformer', tmp_path / 'plain', tiny_data,
                              False, method)
    concat, concat_ckpt = train('segformer', tmp_path / 'concat',
                                tiny_data, True, method)
    hook = next(h for h in concat.hooks if isinstance(h, ConcatInPlaceHook))
    assert hook.heads == ['decode_head']
    head = concat.model.decode_head
    assert head.forward.func is CONCAT_HEADS[type(head)].function
    for name, value in plain_ckpt['state_dict'].items():
        assert torch.equal(concat_ckpt['state_dict'][name], value), name
    phases = [c['meta']['step_peak_memory']['phase_peaks_mb']
              for c in (plain_ckpt, concat_ckpt)]
    # the four upsampled stage features (the tiny config's batch of 2, 32
    # channels at 16 x 16) are no longer kept beside their concatenation
    # while the fusion convolution runs
    maps_mb = 4 * 2 * 32 * 16 * 16 * 4 / 2**20
    assert phases[0]['finetuned_forward'] - phases[1]['finetuned_forward'] \
        >= 0.9 * maps_mb
    record = checkpoint_record('segformer.py',
                               str(tmp_path / 'concat' / 'iter_3.pth'), {})
    assert reductions_tag(record['reductions']) == (
        'prefix1-chunkloss1-concat')


def test_checkpointing_listed_first_wraps_the_new_forward(tiny_data,
                                                         tmp_path):
    """Both hooks change SegFormer's head ``forward``: whatever their order
    in the config, the concatenation is written in place and the head is
    recomputed in backward (neither undoes the other), with the weights
    of checkpointing alone."""
    checkpointed = [dict(type='ActivationCheckpointHook')]
    _, alone = train('segformer', tmp_path / 'alone', tiny_data, False,
                     hooks=checkpointed)
    runner, both = train('segformer', tmp_path / 'both', tiny_data, True,
                         hooks=checkpointed)
    forward = runner.model.decode_head.forward
    assert isinstance(forward, CheckpointedForward)
    assert forward.forward.func is segformer_forward
    for name, value in alone['state_dict'].items():
        assert torch.equal(both['state_dict'][name], value), name


def test_a_head_method_wrapped_before_is_not_replaced():
    model = build_model('segformer')
    checkpoint_modules_(model, ['decode_head'])
    with pytest.raises(ValueError, match=r'decode_head.forward is already '
                       r'replaced on the instance \(CheckpointedForward\); '
                       'write the branches into the concatenation before '
                       'wrapping it'):
        concat_in_place_(model)
    fresh = build_model('segformer')  # its own replacement again: a no-op
    assert concat_in_place_(fresh) == concat_in_place_(fresh) == [
        'decode_head']


@pytest.mark.parametrize('model_name', ['deeplabv3', 'pspnet', 'upernet'])
def test_the_convolutional_heads_train_the_same(model_name, tiny_data,
                                                tmp_path):
    """ASPP, PSP (its frozen input read from the concatenation) and
    UPerNet heads, behind the protocol's frozen prefix."""
    _, plain = train(model_name, tmp_path / 'plain', tiny_data, False)
    runner, concat = train(model_name, tmp_path / 'concat', tiny_data, True)
    head = runner.model.decode_head
    concat_head = CONCAT_HEADS[type(head)]
    assert getattr(head, concat_head.attribute).func is concat_head.function
    for name, value in plain['state_dict'].items():
        assert torch.equal(concat['state_dict'][name], value), name


def test_a_model_without_such_a_head_is_left_alone_with_a_warning(
        tiny_data, tmp_path):
    runner, _ = train('fcn', tmp_path, tiny_data, True)
    hook = next(h for h in runner.hooks if isinstance(h, ConcatInPlaceHook))
    assert hook.heads == []
    with open(runner.logger.log_file) as f:
        log = f.read()
    assert 'WARNING - ConcatInPlaceHook: the model has no head of exactly ' \
        'the types ASPPHead, PSPHead, SegformerHead, UPerHead; nothing ' \
        'changed' in log


def test_the_protocol_configs_do_not_run_it():
    assert not reductions_of(model_config('segformer'))['concat']
