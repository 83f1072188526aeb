"""HOSVD-eps (the paper's method): a Tucker form of each input."""
from ..layers.compressed_conv import Conv2dHOSVD
from ..layers.compressed_linear import LinearHOSVD
from .base import FinetuneMethod
from .options import EPS, SOLVER, WARM_START
from .registry import FINETUNE_METHODS


@FINETUNE_METHODS.register_module(name='hosvd')
class HOSVD(FinetuneMethod):
    """Per-mode ranks from ``eps`` every step (options ``eps``, ``solver``,
    ``warm_start``).
    """

    name = 'hosvd'
    tag_format = 'hosvd-eps{eps:g}'
    module = Conv2dHOSVD
    linear_module = LinearHOSVD
    options = dict(eps=EPS, solver=SOLVER, warm_start=WARM_START)
    shares_input = True
    marker = 'D'
    order = 3

    def tag(self, options):
        return super().tag(options) + ('' if options['warm_start'] else
                                       '-cold')

    def label(self, meta):
        solver = meta.get('solver')
        return (f"eps={meta.get('eps')}" +
                (f', {solver}' if solver not in (None, 'auto') else '') +
                (', cold start' if meta.get('warm_start') is False else ''))
