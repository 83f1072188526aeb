"""The decode head's loss in chunks: same value, accuracy and gradient,
less kept for backward; losses that are not pixel means are refused."""
import pytest
import torch
from mmengine.runner import Runner
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmseg_hosvd.engine import ChunkedLossHook
from mmseg_hosvd.reductions.chunked_loss import chunk_losses_
from mmseg_hosvd.utils import SavedTensorMeter

from ..helpers import build_model, tiny_runner_config


def samples(batch, size, num_classes, ignore=0.1):
    gen = torch.Generator().manual_seed(0)
    result = []
    for _ in range(batch):
        label = torch.randint(0, num_classes, (1, size, size), generator=gen)
        label[torch.rand(label.shape, generator=gen) < ignore] = 255
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=label)
        result.append(sample)
    return result


def head_loss(head, logits, data):
    logits = logits.detach().requires_grad_()
    with SavedTensorMeter() as meter:
        losses = head.loss_by_feat(logits, data)
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    (grad, ) = torch.autograd.grad(total, logits)
    return losses, grad, meter.bytes


@pytest.mark.parametrize('loss_decode', [
    dict(type='CrossEntropyLoss', loss_weight=1.0),
    [dict(type='CrossEntropyLoss', loss_weight=0.7, loss_name='loss_ce'),
     dict(type='CrossEntropyLoss', loss_weight=0.4, loss_name='loss_b')],
])
@pytest.mark.parametrize('chunk', [1, 3])
def test_same_loss_accuracy_and_gradient_with_less_kept(loss_decode, chunk):
    model = build_model('pspnet')
    model.decode_head.loss_decode = (
        torch.nn.ModuleList([MODELS.build(c) for c in loss_decode])
        if isinstance(loss_decode, list) else MODELS.build(loss_decode))
    head = model.decode_head
    logits = torch.randn(5, 5, 8, 8, dtype=torch.float64)
    data = samples(5, 64, 5)
    plain, plain_grad, plain_kept = head_loss(head, logits, data)
    assert chunk_losses_(model, chunk) == ['decode_head']
    chunked, chunked_grad, chunked_kept = head_loss(head, logits, data)
    assert plain.keys() == chunked.keys()
    for key in plain:
        torch.testing.assert_close(chunked[key].reshape(-1),
                                   plain[key].reshape(-1).to(
                                       chunked[key].dtype), msg=key)
    torch.testing.assert_close(chunked_grad, plain_grad)
    # plain keeps the full-size log-probabilities, chunked the logits' grad
    assert chunked_kept <= logits.numel() * 8 * len(plain) < plain_kept


@pytest.mark.parametrize('loss_decode,match', [
    (dict(type='CrossEntropyLoss', avg_non_ignore=True),
     'avg_non_ignore=True'),
    (dict(type='CrossEntropyLoss', class_weight=[1.0, 2.0, 1.0, 1.0, 1.0]),
     r'class_weight=\[1.0, 2.0'),
    (dict(type='DiceLoss'), 'DiceLoss'),
])
def test_losses_that_are_not_pixel_means_are_refused(loss_decode, match):
    model = build_model('fcn')
    model.decode_head.loss_decode = MODELS.build(loss_decode)
    with pytest.raises(ValueError, match=match):
        chunk_losses_(model, 1)


def test_a_runner_trains_with_it(tiny_data, tmp_path):
    cfg = tiny_runner_config('deeplabv3', str(tmp_path), tiny_data, [
        dict(type='CompressConvHook', method='hosvd', num_layers=5),
        dict(type='ChunkedLossHook', chunk=1),
    ])
    runner = Runner.from_cfg(cfg)
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, ChunkedLossHook))
    assert hook.heads == ['decode_head']


@pytest.mark.parametrize('chunk', [0, -1, 1.5, True])
def test_a_bad_chunk_is_named(chunk):
    with pytest.raises(ValueError,
                       match=f'chunk must be an int >= 1, got {chunk!r}'):
        ChunkedLossHook(chunk=chunk)
