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
    tag_format = 'svd-eps{eps:g}'
    module = Conv2dSVD
    linear_module = LinearSVD
    options = dict(eps=EPS)
    shares_input = True
    marker = '^'
    order = 2

    def label(self, meta):
        return f"eps={meta.get('eps')}"
