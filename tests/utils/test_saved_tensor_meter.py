"""The saved-tensor meter against hand counts."""
import torch
from torch import nn

from mmseg_hosvd.utils import SavedTensorMeter


def test_counts_conv_input_and_relu_output_not_parameters():
    conv = nn.Conv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    with SavedTensorMeter.for_model(conv) as meter:
        out = conv(x).relu()
    expected = x.numel() * 4 + out.numel() * 4
    assert meter.bytes == expected
    out.sum().backward()
    assert conv.weight.grad is not None


def test_views_of_one_storage_count_once():
    x = torch.randn(4, 16, requires_grad=True)
    with SavedTensorMeter() as meter:
        y = x * 2
        a = y[:2].sin()  # saves a view of y's storage
        b = y[2:].cos()  # another view of the same storage
    assert meter.bytes == y.numel() * 4
    (a.sum() + b.sum()).backward()


def test_nothing_saved_when_no_grad_is_needed():
    conv = nn.Conv2d(3, 4, 3).requires_grad_(False)
    with SavedTensorMeter.for_model(conv) as meter:
        conv(torch.randn(1, 3, 5, 5))
    assert meter.bytes == 0


def test_reentering_resets():
    x = torch.randn(10, requires_grad=True)
    meter = SavedTensorMeter()
    with meter:
        x.exp()
    first = meter.bytes
    with meter:
        x.exp()
    assert meter.bytes == first == 40
