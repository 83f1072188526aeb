"""Quantized activations (ActNN / GACT idea): the input in 8, 4 or 2 bits."""
from ..layers.compressed_conv import Conv2dQuantized
from ..layers.compressed_linear import LinearQuantized
from ..ops import check_bits, check_group_size
from ..ops.quantized_codes import BITS
from .base import FinetuneMethod
from .options import Option, allocation, per_layer
from .registry import FINETUNE_METHODS


@FINETUNE_METHODS.register_module(name='quantized')
class Quantized(FinetuneMethod):
    """Stores each input as per-group codes of ``bits`` bits.

    Options: ``bits`` (8; 2, 4 or 8; one value or a dict by layer name),
    ``group_size`` (256 elements of a sample per minimum and step) and
    ``allocate`` (e.g. ``dict(budget_of=4)``: each layer's bits from
    ``grid`` by the least summed weight-gradient error within the bytes of
    that setting on every layer). Stochastic rounding keeps the weight
    gradient unbiased. Layers reading one tensor (DeepLabV3's ASPP
    branches) store its codes once.
    """

    name = 'quantized'
    tag_format = 'qact{bits}'
    module = Conv2dQuantized
    linear_module = LinearQuantized
    options = dict(bits=Option(8, per_layer(check_bits)),
                   group_size=Option(256, check_group_size),
                   allocate=Option(None, allocation(check_bits, BITS)))
    per_layer = 'bits'
    shares_input = True
    marker = 'v'
    order = 5

    def label(self, meta):
        bits = meta.get('bits')
        if isinstance(bits, dict):
            bits = '/'.join(str(b) for b in bits.values())
        bits = self.allocation_label(meta) or f'{bits} bits'
        return f"{bits}, groups of {meta.get('group_size')}"
