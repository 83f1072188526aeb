"""The frozen prefix in micro-batches: what is chosen, exact results."""
import pytest
import torch
from mmengine.runner import Runner
from mmseg.registry import MODELS
from torch import nn

from mmseg_hosvd.engine import CompressConvHook, FrozenPrefixHook
from mmseg_hosvd.models import set_norm_eval_
from mmseg_hosvd.reductions.frozen_prefix import MicroBatchedForward
from mmseg_hosvd.reductions.unread_outputs import UnreadOutput

from ..helpers import build_model, model_config, tiny_runner_config


def frozen(model_name, num_layers=5, method='vanilla', **options):
    model = build_model(model_name)
    CompressConvHook(method=method, num_layers=num_layers,
                     **options).apply(model)
    return model


@pytest.mark.parametrize('model_name,expected', [
    ('deeplabv3', ['backbone', 'decode_head.image_pool']),
    ('fcn', ['backbone.stem', 'backbone.maxpool', 'backbone.layer1',
             'backbone.layer2', 'backbone.layer3', 'backbone.layer4.0']),
])
def test_the_largest_frozen_modules_before_the_first_trainable(
        model_name, expected):
    assert FrozenPrefixHook(micro_batch=2).apply(frozen(model_name)) == (
        expected)


@pytest.mark.parametrize('model_name,method,options', [
    ('deeplabv3', 'vanilla', {}),
    ('fcn', 'hosvd', dict(eps=1.0)),  # below 1, ranks follow float noise
    ('pspnet-m', 'vanilla', {}),
    # at 10 layers the prefix holds its patch embedding and first stages,
    # which also return the token grid's size
    ('swin-upernet', 'vanilla', dict(num_layers=10)),
    # fine-tunes Linear layers inside the backbone's last stage, whose
    # Mix-FFN lists one dropout module twice
    ('segformer', 'vanilla', dict(num_layers=10)),
])
def test_micro_batches_give_the_same_outputs_and_gradients(
        model_name, method, options):
    plain = frozen(model_name, method=method, **options)
    for module in plain.modules():  # mmseg zero-initialises residual norms
        if isinstance(module, nn.BatchNorm2d):
            nn.init.uniform_(module.weight, 0.5, 1.5)
    micro = frozen(model_name, method=method, **options)
    micro.load_state_dict(plain.state_dict())
    assert FrozenPrefixHook(micro_batch=1).apply(micro)
    # float64: float32 convolutions of 1 and 3 images round differently
    plain.double()
    micro.double()
    x = torch.randn(3, 3, 64, 64, dtype=torch.float64)
    outputs = []
    for model in (plain, micro):
        model.train()
        set_norm_eval_(model)
        out = model._forward(x)
        out.square().sum().backward()
        outputs.append(out)
    torch.testing.assert_close(outputs[0], outputs[1])
    grads = [{n: p.grad for n, p in m.named_parameters() if p.requires_grad}
             for m in (plain, micro)]
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name in grads[0]:
        assert grads[0][name].abs().sum() > 0, name
        torch.testing.assert_close(grads[0][name], grads[1][name],
                                   msg=name)


class ReturnsItsCallCount(nn.Module):

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x * 2, self.calls


def test_a_non_tensor_output_that_depends_on_the_images_is_refused():
    module = ReturnsItsCallCount()
    forward = MicroBatchedForward(module, module.forward, micro_batch=2)
    with pytest.raises(RuntimeError, match='returned 1 for its first '
                       'micro-batch and 2 for the one at image 2'):
        forward(torch.randn(4, 3))


def test_norms_in_training_mode_are_refused():
    model = frozen('deeplabv3')
    FrozenPrefixHook(micro_batch=1).apply(model)
    model.train()  # norm statistics not frozen
    with pytest.raises(RuntimeError, match='norm layer .* is in training '
                       'mode'):
        model._forward(torch.randn(2, 3, 64, 64))


def test_bad_micro_batch_is_named():
    with pytest.raises(ValueError, match='micro_batch must be an int >= 1, '
                       'got 0'):
        FrozenPrefixHook(micro_batch=0)


def test_a_runner_trains_with_it(tiny_data, tmp_path):
    cfg = tiny_runner_config('pspnet', str(tmp_path), tiny_data, [
        dict(type='CompressConvHook', method='hosvd', num_layers=5),
        dict(type='FrozenPrefixHook', micro_batch=1),
        dict(type='ActivationMemoryHook')
    ])
    runner = Runner.from_cfg(cfg)
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, FrozenPrefixHook))
    assert hook.modules[0] == 'backbone'


@pytest.mark.parametrize('model_name,kept', [
    ('deeplabv3', {3}),
    ('pspnet', {3}),
    ('upernet', {0, 1, 2, 3}),
])
def test_backbone_outputs_no_head_reads_are_not_kept(model_name, kept):
    model = frozen(model_name)
    hook = FrozenPrefixHook(micro_batch=1)
    hook.apply(model)
    assert hook.kept['backbone'] == kept
    model.train()
    set_norm_eval_(model)
    features = model.backbone(torch.randn(2, 3, 64, 64))
    for position, feature in enumerate(features):
        # the dropped ones keep their shape, not their data
        assert isinstance(feature, UnreadOutput) == (position not in kept)
        # ResNet-18-d8 at 64 x 64: stride 4, then 8
        expected = (2, 64 * 2**position, *((8, 8) if position else (16, 16)))
        assert feature.shape == expected
        if position not in kept:
            with pytest.raises(RuntimeError,
                               match=f'output {position} of backbone, '
                               'which FrozenPrefixHook dropped'):
                feature + 1


def test_an_auxiliary_head_keeps_what_it_reads():
    """The auxiliary head runs only in the loss path: the trace of the
    training forward sees it, and keeps its input."""
    cfg = model_config('deeplabv3')
    cfg.model.auxiliary_head = dict(
        type='FCNHead', in_channels=256, in_index=2, channels=16,
        num_convs=1, concat_input=False,
        num_classes=cfg.model.decode_head.num_classes,
        norm_cfg=cfg.model.decode_head.norm_cfg, align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', loss_weight=0.4))
    model = MODELS.build(cfg.model)
    CompressConvHook(method='vanilla', num_layers=5).apply(model)
    hook = FrozenPrefixHook(micro_batch=1)
    hook.apply(model)
    assert hook.kept == {'backbone': {2, 3}}


def test_drop_unread_off_keeps_every_output():
    model = frozen('deeplabv3')
    hook = FrozenPrefixHook(micro_batch=1, drop_unread=False)
    hook.apply(model)
    assert hook.kept == {}
    model.train()
    set_norm_eval_(model)
    features = model.backbone(torch.randn(2, 3, 64, 64))
    assert not any(isinstance(f, UnreadOutput) for f in features)
    with pytest.raises(ValueError, match="drop_unread must be True or "
                       "False, got 'yes'"):
        FrozenPrefixHook(drop_unread='yes')


def test_a_module_listed_twice_does_not_stop_the_search():
    """``named_modules`` names a module used twice only once; the prefix
    search descends through the second name too (the trace knows the
    module by its first name, where it is taken)."""
    drop = nn.Dropout(0.)
    model = nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 4, 1), drop),
        nn.Sequential(nn.Conv2d(4, 4, 1), drop, nn.Conv2d(4, 2, 1), drop))
    for p in model.parameters():
        p.requires_grad_(False)
    model[1][2].weight.requires_grad_(True)
    names = FrozenPrefixHook(micro_batch=1,
                             trace_input_shape=(1, 3, 8, 8)).apply(model)
    assert names == ['0', '1.0']
