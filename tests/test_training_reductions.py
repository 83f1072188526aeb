"""What a config does to lower memory besides its method: read from real
configs, and from the config tools/train.py runs with --amp."""
import pytest
from mmengine.config import Config

from mmseg_hosvd.reductions.describe import (
    describe_reductions,
    parse_reductions_tag,
    reduction_names,
    reductions_of,
    reductions_tag,
)
from tools.train import build_config, parse_args

from .helpers import model_config

PLAIN = dict(accumulate=1, micro_batch=8, amp=None, checkpoint=False,
             frozen_prefix=None, chunked_loss=None, concat=False)


def test_a_protocol_config_runs_the_exact_reductions_only():
    reductions = reductions_of(model_config('deeplabv3'))
    assert reductions == dict(PLAIN, frozen_prefix=1, chunked_loss=1)
    assert reductions_tag(reductions) == 'prefix1-chunkloss1'
    assert describe_reductions(reductions) == (
        'frozen prefix in micro-batches of 1, loss in chunks of 1')


def test_a_config_without_reduction_hooks_has_none():
    cfg = model_config('deeplabv3')
    cfg.custom_hooks = [h for h in cfg.custom_hooks
                        if h['type'] not in ('FrozenPrefixHook',
                                             'ChunkedLossHook')]
    reductions = reductions_of(Config(cfg.to_dict()))
    assert reductions == PLAIN
    assert reductions_tag(reductions) == describe_reductions(reductions) == ''


@pytest.mark.parametrize('cuda', [False, True])
def test_the_amp_flag_is_seen_in_the_config_as_trained(cuda, monkeypatch,
                                                       tmp_path):
    monkeypatch.setattr('torch.cuda.is_available', lambda: cuda)
    path = str(tmp_path / 'c.py')
    model_config('fcn').dump(path)
    reductions = reductions_of(build_config(parse_args([path, '--amp'])))
    assert reductions['amp'] == ('float16' if cuda else 'bfloat16')
    assert reductions_tag(reductions) == 'amp-prefix1-chunkloss1'


def test_every_reduction_is_tagged_in_order_and_described():
    cfg = model_config('pspnet')
    cfg.train_dataloader.batch_size = 2
    cfg.optim_wrapper.accumulative_counts = 4
    cfg.optim_wrapper.type = 'AutocastOptimWrapper'
    cfg.custom_hooks = list(cfg.custom_hooks) + [
        dict(type='ChunkedLossHook', chunk=2),
        dict(type='FrozenPrefixHook', micro_batch=1),
        dict(type='ActivationCheckpointHook'),
        dict(type='ConcatInPlaceHook')
    ]
    reductions = reductions_of(Config(cfg.to_dict()))
    assert reductions == dict(accumulate=4, micro_batch=2, amp='bfloat16',
                              checkpoint=True, frozen_prefix=1,
                              chunked_loss=2, concat=True)
    assert reductions_tag(reductions) == (
        'mb2-ckpt-amp-prefix1-chunkloss2-concat')
    assert describe_reductions(reductions) == (
        'accumulation of 4 micro-batches of 2, activation checkpointing, '
        'bfloat16 autocast, frozen prefix in micro-batches of 1, loss in '
        'chunks of 2, branches written into the concatenation')


def test_a_tag_names_the_in_place_concatenation_last():
    assert reduction_names('concat+prefix1') == ['prefix1', 'concat']
    assert parse_reductions_tag('concat-chunkloss1') == dict(
        micro_batch=None, checkpoint=False, amp=False, frozen_prefix=None,
        chunked_loss=1, concat=True)
    assert not parse_reductions_tag('prefix1')['concat']
    with pytest.raises(ValueError, match="'concat-concat' names 'concat' "
                       "and 'concat'"):
        reduction_names('concat-concat')
