"""Quantized activations (ActNN / GACT idea): the input in 8, 4 or 2 bits."""
from ..layers.compressed_conv import Conv2dQuantized
from ..layers.compressed_linear import LinearQuantized
from ..ops import check_bits, check_group_size
from .base import FinetuneMethod
from .options import Option
from .registry import FINETUNE_METHODS


@FINETUNE_METHODS.register_module(name='quantized')
class Quantized(FinetuneMethod):
    """Stores each input as per-group codes of ``bits`` bits.

    Options: ``bits`` (8; 2, 4 or 8) and ``group_size`` (256 elements of a
    sample per minimum and step). Stochastic rounding keeps the weight
    gradient unbiased. Layers reading one tensor (DeepLabV3's ASPP
    branches) store its codes once.
    """

    name = 'quantized'
    tag_format = 'qact{bits}'
    module = Conv2dQuantized
    linear_module = LinearQuantized
    options = dict(bits=Option(8, check_bits),
                   group_size=Option(256, check_group_size))
    shares_input = True
    marker = 'v'
    order = 5

    def label(self, meta):
        return f"{meta.get('bits')} bits, groups of {meta.get('group_size')}"
