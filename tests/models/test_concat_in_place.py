"""ASPP, PSP, SegFormer and UPerNet heads write their branches into one
concatenation."""
import functools

import pytest
import torch
from torch import nn

from mmseg_hosvd.engine import CompressConvHook
from mmseg_hosvd.models import set_norm_eval_
from mmseg_hosvd.reductions.concat_in_place import (
    CONCAT_HEADS,
    concat_into,
    share_copy_,
)
from mmseg_hosvd.utils.step_memory import transient_peak_bytes

from ..helpers import build_model

#: A protocol model for each head with an in-place concatenation
#: (UPerNet's at one resolution and at four).
CONCAT_HEAD_MODELS = ['deeplabv3', 'pspnet', 'segformer', 'upernet',
                      'swin-upernet']


def features_in(model, batch=2, size=16):
    """Backbone-shaped inputs of the decode head: ResNet-18-d8 widths at
    one size, or MiT-B0's at 1/4 to 1/32 of a 4 * size input."""
    gen = torch.Generator().manual_seed(0)
    backbone = model.backbone.__class__.__name__
    if backbone == 'MixVisionTransformer':
        shapes = [(c, size >> i) for i, c in enumerate((32, 64, 160, 256))]
    elif backbone == 'SwinTransformer':
        shapes = [(c, size >> i) for i, c in enumerate((96, 192, 384, 768))]
    else:
        shapes = [(c, size) for c in (64, 128, 256, 512)]
    return [torch.randn(batch, c, side, side, generator=gen,
                        dtype=next(model.parameters()).dtype)
            for c, side in shapes]


def head_of(model_name, lean, eps=1.0):
    model = build_model(model_name)
    for module in model.modules():  # mmseg zero-initialises residual norms
        if isinstance(module, nn.BatchNorm2d):
            nn.init.uniform_(module.weight, 0.5, 1.5)
    plan = CompressConvHook(method='hosvd', num_layers=5, eps=eps,
                            lean=lean).apply(model)
    model.train()
    set_norm_eval_(model)
    return model, plan


@pytest.mark.parametrize('frozen_input', [False, True])
@pytest.mark.parametrize('model_name', CONCAT_HEAD_MODELS)
def test_same_features_and_gradients_as_mmseg(model_name, frozen_input):
    model, _ = head_of(model_name, lean=False)
    model.double()
    head = model.decode_head
    lean = CONCAT_HEADS[type(head)]
    results = []
    for forward in (getattr(head, lean.attribute),
                    functools.partial(lean.function, head)):
        model.zero_grad()
        inputs = [f.requires_grad_(not frozen_input)
                  for f in features_in(model)]
        original = inputs[3].detach().clone()
        out = forward(inputs)
        out.square().sum().backward()
        grads = {n: p.grad.clone() for n, p in head.named_parameters()
                 if p.grad is not None}
        # a frozen input keeps its values, wherever they are now stored
        torch.testing.assert_close(inputs[3].detach(), original, rtol=0,
                                   atol=0)
        results.append((out.detach(), inputs[3].grad, grads))
    (out0, gin0, grads0), (out1, gin1, grads1) = results
    torch.testing.assert_close(out1, out0)
    if frozen_input:
        assert gin0 is None and gin1 is None
    else:
        torch.testing.assert_close(gin1, gin0)
    assert grads0.keys() == grads1.keys() and grads0
    for name in grads0:
        assert grads0[name].abs().sum() > 0, name
        torch.testing.assert_close(grads1[name], grads0[name], msg=name)


def forward_peak_bytes(forward, inputs) -> int:
    def run():
        with torch.no_grad():
            forward(inputs)
    return transient_peak_bytes(run)


def test_the_concatenation_never_holds_the_parts_twice():
    """Five 1 MB branch outputs, each from a trained convolution: mmseg's
    list-then-cat holds all five and the 5 MB result at once; writing in
    place holds the result and one branch."""
    conv = nn.Conv2d(8, 16, 1)
    x = torch.randn(4, 8, 64, 64)
    parts = [lambda: torch.relu(conv(x)) for _ in range(5)]
    branch = 4 * 16 * 64 * 64 * 4
    peaks = {}
    for _ in range(2):  # the first call also makes one-time allocations
        peaks['list'] = forward_peak_bytes(
            lambda _: torch.cat([p() for p in parts], 1), None)
        peaks['in place'] = forward_peak_bytes(
            lambda _: concat_into(parts, [16] * 5), None)
    # relu keeps its output for backward in both: measured without grad.
    # list: five branches and the result (plus one convolution output);
    # in place: the result, one branch's convolution output and its ReLU
    assert peaks['list'] >= 10 * branch
    assert peaks['in place'] <= 7.5 * branch


def test_backward_hands_out_slices_of_the_gradient():
    leaves = [torch.randn(4, 16, 64, 64, requires_grad=True)
              for _ in range(5)]
    out = concat_into([lambda leaf=leaf: leaf * 2 for leaf in leaves],
                      [16] * 5)
    grad = torch.randn_like(out)
    branch = 4 * 16 * 64 * 64 * 4
    peak = transient_peak_bytes(lambda: out.backward(grad))
    # the five leaves' gradients and one product's; a clone of the whole
    # gradient per part (slice assignment's backward) would add 5 more
    assert peak <= 6.5 * branch
    for index, leaf in enumerate(leaves):
        torch.testing.assert_close(leaf.grad,
                                   2 * grad[:, 16 * index:16 * (index + 1)])


def test_the_lean_region_writes_its_heads_in_place():
    for model_name in CONCAT_HEAD_MODELS:
        model, plan = head_of(model_name, lean=True)
        assert plan['lean_concat'] == ['decode_head']
        lean = CONCAT_HEADS[type(model.decode_head)]
        assert getattr(model.decode_head,
                       lean.attribute).func is lean.function


def test_heads_without_a_pyramid_are_left_alone():
    _, plan = head_of('fcn', lean=True)
    assert plan['lean_concat'] == []


def test_a_part_of_the_wrong_width_is_named():
    with pytest.raises(ValueError, match='a part has 3 channels where 2 '
                       'were expected'):
        concat_into([lambda: torch.zeros(1, 3, 2, 2)], [2])


def test_a_frozen_psp_input_is_read_from_its_copy_in_the_concatenation():
    """PSPNet concatenates its input with the pyramid: once copied, the
    input is stored only there (its own memory is freed; the whole-step
    benchmark measures the peak)."""
    model, _ = head_of('pspnet', lean=True)
    head = model.decode_head
    inputs = features_in(model)
    x = inputs[3]
    original, own = x.clone(), x.untyped_storage().data_ptr()
    with torch.no_grad():
        head._forward_feature(inputs)
    assert x.untyped_storage().data_ptr() != own
    assert x.untyped_storage().nbytes() == x.nbytes * (
        512 + 4 * head.channels) // 512
    torch.testing.assert_close(x, original, rtol=0, atol=0)


def test_only_a_frozen_tensor_owning_its_memory_is_repointed():
    copy = torch.arange(8.).view(2, 4)
    owner = copy.clone()
    assert share_copy_(owner, copy[:, :4])
    assert owner.untyped_storage().data_ptr() == copy.untyped_storage(
    ).data_ptr()
    assert not share_copy_(copy.clone().requires_grad_(), copy)
    assert not share_copy_(copy.clone()[:1], copy[:1])  # a view
    assert not share_copy_(copy.clone().double(), copy)
    assert not share_copy_(copy.clone(), copy[:, :2])


@pytest.mark.parametrize('channels_last', [False, True])
def test_the_concatenation_keeps_the_parts_layout(channels_last):
    """As ``torch.cat`` does: SegFormer's channels-last stage features give
    a channels-last concatenation, which its fusion convolution and HOSVD
    read fastest."""
    layout = torch.channels_last if channels_last else torch.contiguous_format
    leaves = [torch.randn(2, 3, 5, 4).to(memory_format=layout)
              .requires_grad_() for _ in range(3)]
    out = concat_into([lambda leaf=leaf: leaf * 2 for leaf in leaves],
                      [3] * 3)
    expected = torch.cat([leaf * 2 for leaf in leaves], 1)
    assert out.stride() == expected.stride()
    assert out.is_contiguous(memory_format=layout)
    torch.testing.assert_close(out, expected)
    grad = torch.randn_like(out)
    out.backward(grad)
    for index, leaf in enumerate(leaves):
        torch.testing.assert_close(leaf.grad,
                                   2 * grad[:, 3 * index:3 * (index + 1)])


@pytest.mark.parametrize('first_channels_last', [False, True])
def test_parts_of_mixed_layouts_give_the_values_of_torch_cat(
        first_channels_last):
    """The first part's layout decides; values and gradients are
    ``torch.cat``'s either way."""
    layouts = [torch.contiguous_format, torch.channels_last]
    if first_channels_last:
        layouts.reverse()
    leaves = [torch.randn(2, 3, 5, 4).to(memory_format=m).requires_grad_()
              for m in layouts]
    out = concat_into([lambda leaf=leaf: leaf * 2 for leaf in leaves],
                      [3, 3])
    assert out.is_contiguous(memory_format=layouts[0])
    torch.testing.assert_close(out, torch.cat([leaf * 2 for leaf in leaves],
                                              1))
    grad = torch.randn_like(out)
    out.backward(grad)
    for index, leaf in enumerate(leaves):
        torch.testing.assert_close(leaf.grad,
                                   2 * grad[:, 3 * index:3 * (index + 1)])



@pytest.mark.parametrize('dtypes', [
    (torch.bfloat16, torch.float32, torch.bfloat16),
    (torch.float32, torch.bfloat16), (torch.bfloat16, torch.float16)])
def test_parts_of_mixed_dtypes_are_concatenated_as_torch_cat_does(dtypes):
    """Under autocast a head's branches can differ in dtype: the result has
    ``torch.cat``'s promoted dtype and values, whichever part comes first,
    and each part gets its slice of the gradient in its own dtype."""
    gen = torch.Generator().manual_seed(0)
    leaves = [torch.randn(2, 3, 4, 4, generator=gen).to(dtype)
              .requires_grad_() for dtype in dtypes]
    out = concat_into([lambda leaf=leaf: leaf * 2 for leaf in leaves],
                      [3] * len(leaves))
    expected = torch.cat([leaf * 2 for leaf in leaves], 1)
    assert out.dtype == expected.dtype
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    grad = torch.randn(out.shape, generator=gen, dtype=out.dtype)
    out.backward(grad)
    for index, leaf in enumerate(leaves):
        assert leaf.grad.dtype == leaf.dtype
        torch.testing.assert_close(
            leaf.grad, (2 * grad[:, 3 * index:3 * (index + 1)]).to(
                leaf.dtype), rtol=0, atol=0)
