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
    module = Conv2dHOSVD
    linear_module = LinearHOSVD
    options = dict(eps=EPS, solver=SOLVER, warm_start=WARM_START)
    shares_input = True
    marker = 'D'
    order = 3
    protocol_settings = (dict(eps=0.8), dict(eps=0.9))
    extension_settings = (dict(eps=0.8, lean=True), )

    def tag(self, options):
        return f"hosvd-eps{options['eps']:g}" + ('' if options['warm_start']
                                                 else '-cold')

    def label(self, meta):
        solver = meta.get('solver')
        return (f"eps={meta.get('eps')}" +
                (f', {solver}' if solver not in (None, 'auto') else '') +
                (', cold start' if meta.get('warm_start') is False else ''))
