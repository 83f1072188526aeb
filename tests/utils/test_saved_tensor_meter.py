"""The saved-tensor meter against hand counts."""
import pytest
import torch
from torch import nn

from mmseg_hosvd.utils import OUTSIDE, RunningModule, SavedTensorMeter


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


#: The part of autograd's in-place error that the meter's own check repeats.
INPLACE_ERROR = (r'one of the variables needed for gradient computation has '
                 r'been modified by an inplace operation: '
                 r'\[torch\.FloatTensor \[2, 3\]\], .*is at version 1; '
                 r'expected version 0 instead')


def exp_modified_in_place(x):
    """exp saves its output for backward, which is then modified in place."""
    y = x.exp()
    y.add_(1)
    return y.sum()


@pytest.mark.parametrize('metered', [False, True])
def test_a_saved_tensor_modified_in_place_raises_as_autograd_does(metered):
    x = torch.randn(2, 3, requires_grad=True)
    if metered:
        with SavedTensorMeter():
            loss = exp_modified_in_place(x)
    else:
        loss = exp_modified_in_place(x)
    with pytest.raises(RuntimeError, match=INPLACE_ERROR):
        loss.backward()


def test_backward_gets_the_saved_tensor_itself_not_a_copy():
    x = torch.randn(2, 3, requires_grad=True)
    with SavedTensorMeter() as meter:
        y = x.exp()
    saved = y.grad_fn._saved_result  # unpacked through the meter
    assert saved.data_ptr() == y.data_ptr() and saved.shape == y.shape
    assert meter.bytes == y.numel() * 4
    y.sum().backward()
    torch.testing.assert_close(x.grad, x.exp(), rtol=0, atol=0)


class ProjectThenSquare(nn.Module):
    """A child Linear, then a functional op of the module's own."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(6, 6)

    def forward(self, x):
        return self.proj(x).pow(2)


def test_bytes_go_to_the_innermost_running_module():
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), ProjectThenSquare())
    x = torch.randn(5, 4, requires_grad=True)
    with RunningModule(model) as running, SavedTensorMeter.for_model(
            model, running.kind) as meter:
        hidden = model(x)
        out = hidden.exp()  # saved outside the model
    row = 5 * 6 * 4
    assert meter.by_owner == {
        'Linear': x.numel() * 4,  # the first's input
        'ReLU': row,  # its output, which proj saves again: counted once
        'ProjectThenSquare': row,  # pow's input: proj's output
        OUTSIDE: row,  # exp's output
    }
    assert sum(meter.by_owner.values()) == meter.bytes
    out.sum().backward()
    assert not model[0]._forward_pre_hooks and not model[0]._forward_hooks


def test_a_failed_call_caught_by_the_model_leaves_the_stack_right():
    class Refuses(nn.Module):

        def forward(self, x):
            return x

    class TriesFirst(nn.Module):

        def __init__(self):
            super().__init__()
            self.refuses = Refuses()
            self.refuses.register_forward_pre_hook(self.refuse)

        @staticmethod
        def refuse(module, args):
            raise ValueError('not this input')

        def forward(self, x):
            try:
                self.refuses(x)
            except ValueError:
                pass
            return x.exp()  # the model's own op, after the failed call

    model = TriesFirst()
    x = torch.randn(3, requires_grad=True)
    with RunningModule(model) as running, SavedTensorMeter(
            owner=running.kind) as meter:
        model(x)
        assert running.kind() == OUTSIDE
    assert meter.by_owner == {'TriesFirst': 12}
