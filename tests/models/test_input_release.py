"""The preprocessed batch is freed after the frozen prefix, when safe."""
import types

import pytest
import torch
from mmengine.model import BaseDataPreprocessor
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from torch import nn

from mmseg_hosvd.engine import CompressConvHook, FrozenPrefixHook
from mmseg_hosvd.models import set_norm_eval_
from mmseg_hosvd.reductions.input_release import (
    input_read_only_by,
    release_storage_,
)

from ..helpers import build_model


def frozen(model_name='pspnet', seed=0):
    torch.manual_seed(seed)
    model = build_model(model_name)
    for module in model.modules():  # mmseg zero-initialises residual norms
        if isinstance(module, nn.BatchNorm2d):
            nn.init.uniform_(module.weight, 0.5, 1.5)
    CompressConvHook(method='vanilla', num_layers=5).apply(model)
    return model


def raw_batch(size=48, count=3):
    generator = torch.Generator().manual_seed(1)
    samples = []
    for _ in range(count):
        sample = SegDataSample(metainfo=dict(
            img_shape=(size, size), ori_shape=(size, size)))
        sample.gt_sem_seg = PixelData(data=torch.randint(
            0, 5, (1, size, size), generator=generator))
        samples.append(sample)
    images = [torch.randint(0, 256, (3, size, size), generator=generator,
                            dtype=torch.uint8) for _ in range(count)]
    return dict(inputs=images, data_samples=samples)


def step(model, release_input):
    """The forward and backward of MMEngine's ``train_step``: the module
    after which the batch is freed, the prefix's first module, the
    preprocessed batch and the gradients of the trainable parameters."""
    hook = FrozenPrefixHook(micro_batch=1, release_input=release_input)
    first = hook.apply(model)[0]
    model.train()
    set_norm_eval_(model)
    batch = model.data_preprocessor(raw_batch(), True)
    loss, _ = model.parse_losses(model._run_forward(batch, mode='loss'))
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()
             if p.requires_grad}
    return hook.released, first, batch['inputs'], grads


@pytest.mark.parametrize('model_name', ['pspnet', 'deeplabv3', 'fcn'])
def test_a_training_step_frees_the_batch_and_trains_the_same(model_name):
    not_released, _, kept, expected = step(frozen(model_name), False)
    released, first, freed, grads = step(frozen(model_name), True)
    assert not_released is None and released == first
    assert kept.untyped_storage().nbytes() == kept.numel() * 4
    assert freed.untyped_storage().nbytes() == 0  # its memory is gone
    assert freed.shape == kept.shape
    assert expected.keys() == grads.keys() and grads
    for name in grads:
        torch.testing.assert_close(grads[name], expected[name], msg=name)


def test_validation_keeps_the_batch():
    model = frozen()
    FrozenPrefixHook(micro_batch=1).apply(model)
    model.eval()
    inputs = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        model._forward(inputs)
    assert inputs.untyped_storage().nbytes() == inputs.numel() * 4


@pytest.mark.parametrize('read', [
    lambda inputs: inputs.mean(),
    # inside a list, as torch.cat takes it
    lambda inputs: torch.cat([inputs, inputs]).mean(),
])
def test_a_loss_path_that_reads_the_batch_again_keeps_it(read):
    model = frozen()
    loss = model.loss

    def loss_reading_inputs(self, inputs, data_samples):
        losses = loss(inputs, data_samples)
        losses['brightness'] = read(inputs) * 0
        return losses

    model.loss = types.MethodType(loss_reading_inputs, model)
    assert not input_read_only_by(model, 'backbone')
    hook = FrozenPrefixHook(micro_batch=1)
    hook.apply(model)
    assert hook.released is None


def test_only_the_module_that_receives_the_batch_may_free_it():
    model = frozen('deeplabv3')
    assert input_read_only_by(model, 'backbone')
    # the image pool reads the backbone's output, not the batch
    assert not input_read_only_by(model, 'decode_head.image_pool')


def test_another_data_preprocessor_keeps_the_batch():
    model = frozen()
    model.data_preprocessor = BaseDataPreprocessor()
    assert not input_read_only_by(model, 'backbone')


@pytest.mark.parametrize('make', [
    lambda: torch.randn(4, 3)[1:],  # a view
    lambda: torch.randn(4, 3).t(),  # not contiguous
    lambda: torch.randn(4, 3, requires_grad=True),
    lambda: nn.Parameter(torch.randn(4, 3)),
])
def test_only_a_plain_tensor_owning_its_storage_is_freed(make):
    tensor = make()
    before = tensor.untyped_storage().nbytes()
    assert not release_storage_(tensor)
    assert tensor.untyped_storage().nbytes() == before


def test_bad_release_input_is_named():
    with pytest.raises(ValueError, match="release_input must be True or "
                       "False, got 1"):
        FrozenPrefixHook(release_input=1)
