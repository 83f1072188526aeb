"""SVD-eps: a truncated SVD of each (B, C H W) input."""
from ..layers.compressed_conv import Conv2dSVD
from ..layers.compressed_linear import LinearSVD
from .base import FinetuneMethod
from .options import EPS
from .registry import FINETUNE_METHODS


@FINETUNE_METHODS.register_module(name='svd')
class SVD(FinetuneMethod):
    """Stores ``B k + k C H W`` numbers per input (option ``eps``)."""

    name = 'svd'
    module = Conv2dSVD
    linear_module = LinearSVD
    options = dict(eps=EPS)
    shares_input = True
    marker = '^'
    order = 2
    protocol_settings = (dict(eps=0.8), )

    def tag(self, options):
        return f"svd-eps{options['eps']:g}"

    def label(self, meta):
        return f"eps={meta.get('eps')}"
