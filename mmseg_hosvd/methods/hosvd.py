"""HOSVD-eps (the paper's method): a Tucker form of each input."""
import dataclasses
from collections.abc import Mapping
from typing import Optional

from ..layers.compressed_conv import Conv2dHOSVD
from ..layers.compressed_linear import LinearHOSVD
from .base import FinetuneMethod
from .options import (
    EPS,
    KEEP_BATCH,
    SOLVER,
    WARM_START,
    Option,
    allocation,
    per_layer,
)
from .registry import FINETUNE_METHODS

#: The eps values an allocation chooses from unless ``allocate.grid`` says.
GRID = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def set_eps(module, value: float, keep_batch: Optional[bool] = None) -> None:
    """Sets a built HOSVD module's eps (an allocation's choice).

    Args:
        module: A ``Conv2dHOSVD`` or ``LinearHOSVD``.
        value: Its eps.
        keep_batch: Whether it keeps the batch mode whole; None leaves
            that as it is.
    """
    module.eps = value
    kept = module.decomposition.keep_batch if keep_batch is None else \
        keep_batch
    module.decomposition = dataclasses.replace(
        module.decomposition, eps=value, keep_batch=kept)


def eps_label(method: FinetuneMethod, meta) -> str:
    """A run's eps as comparisons show it: 'eps=0.8', one value per layer
    ('eps=0.8/0.9/...'), or how the method allocated it."""
    eps = method.allocation_label(meta) or meta.get('eps')
    if isinstance(eps, dict):
        return 'eps=' + '/'.join(f'{v:g}' for v in eps.values())
    return eps if isinstance(eps, str) else f'eps={eps}'


@FINETUNE_METHODS.register_module(name='hosvd')
class HOSVD(FinetuneMethod):
    """Per-mode ranks from ``eps`` every step (options ``eps``, ``solver``,
    ``warm_start``, ``keep_batch``, ``allocate``).

    ``eps`` is one value or a dict by layer name. ``keep_batch=True`` keeps
    the batch mode whole (every image its own slice of the core, the
    channel and spatial modes truncated at eps), which the paper's HOSVD
    truncates too. ``allocate`` (e.g. ``dict(budget_of=0.8)``) picks each
    layer's eps from ``grid`` on the first labelled batches: the least
    summed weight-gradient error whose stored bytes fit the budget (see
    :mod:`mmseg_hosvd.planning`); ``budget_of`` is the bytes of the
    paper's HOSVD at that eps, the batch mode truncated, whatever
    ``keep_batch`` is. Where no kept-batch choice fits those bytes (a small
    batch the paper's HOSVD truncates), the allocation may also give a
    layer the paper's HOSVD at ``budget_of``, so it always fits; such a
    layer's setting is ``dict(eps=..., keep_batch=False)``.
    """

    name = 'hosvd'
    tag_format = 'hosvd-eps{eps:g}'
    module = Conv2dHOSVD
    linear_module = LinearHOSVD
    options = dict(eps=Option(EPS.default, per_layer(EPS.check)),
                   solver=SOLVER, warm_start=WARM_START,
                   keep_batch=KEEP_BATCH,
                   allocate=Option(None, allocation(EPS.check, GRID)))
    per_layer = 'eps'
    shares_input = True
    marker = 'D'
    order = 3

    def tag(self, options):
        return (super().tag(options) +
                ('' if options['warm_start'] else '-cold') +
                ('-keepbatch' if options['keep_batch'] else ''))

    def budget_options(self, options):
        return {**options, 'keep_batch': False}

    def budget_setting(self, value):
        return dict(eps=value, keep_batch=False)

    def set_layer_setting(self, module, value):
        if isinstance(value, Mapping):
            set_eps(module, value['eps'], value['keep_batch'])
        else:
            set_eps(module, value)

    def label(self, meta):
        solver = meta.get('solver')
        return (eps_label(self, meta) +
                (f', {solver}' if solver not in (None, 'auto') else '') +
                (', cold start' if meta.get('warm_start') is False else '') +
                (', batch mode kept' if meta.get('keep_batch') else ''))
