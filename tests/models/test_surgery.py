"""Module surgery: a swapped module is swapped wherever it is referenced."""
from mmseg.models.backbones.mit import MixFFN
from torch import nn

from mmseg_hosvd.selection.surgery import set_submodule


def test_a_module_registered_twice_is_swapped_under_both_names():
    ffn = MixFFN(embed_dims=8, feedforward_channels=16)
    # mmseg registers the activation as ``activate`` and as ``layers.2``
    assert ffn.activate is ffn.layers[2]
    new = nn.SiLU()
    set_submodule(ffn, 'activate', new)
    assert ffn.activate is new and ffn.layers[2] is new
    assert not any(isinstance(m, nn.GELU) for m in ffn.modules())


def test_other_modules_of_the_same_kind_stay():
    model = nn.Sequential(nn.ReLU(), nn.Sequential(nn.ReLU()))
    kept = model[1][0]
    set_submodule(model, '0', nn.SiLU())
    assert isinstance(model[0], nn.SiLU) and model[1][0] is kept


class Wrapper(nn.Module):

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x) + 1


def test_a_wrapper_keeps_the_module_it_wraps():
    model = nn.Sequential(nn.ReLU())
    old = model[0]
    set_submodule(model, '0', Wrapper(old))
    assert isinstance(model[0], Wrapper) and model[0].inner is old
