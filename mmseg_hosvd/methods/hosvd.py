"""HOSVD-eps (the paper's method): a Tucker form of each input."""
import dataclasses
from collections.abc import Mapping

from ..layers.compressed_conv import Conv2dHOSVD
from ..layers.compressed_linear import LinearHOSVD
from .base import FinetuneMethod
from .options import (
    EPS,
    KEEP_BATCH,
    SOLVER,
    SPATIAL_EPS,
    WARM_START,
    Option,
    PairedSetting,
    allocation,
    per_layer,
)
from .registry import FINETUNE_METHODS

#: The eps values an allocation chooses from unless ``allocate.grid`` says.
GRID = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


#: The second setting an allocation may choose per layer: the spatial
#: modes' eps, from ``allocate.spatial_grid``.
SPATIAL = PairedSetting('spatial_eps', 'spatial_grid', SPATIAL_EPS.check)


def set_eps(module, eps: float, **changes) -> None:
    """Sets a built HOSVD module's eps (an allocation's choice).

    Args:
        module: A ``Conv2dHOSVD`` or ``LinearHOSVD`` (or a subspace
            module, which keeps an eps too).
        eps: Its eps.
        **changes: Other fields of its
            :class:`~mmseg_hosvd.ops.DecompositionSettings` to set
            (``keep_batch``, ``spatial_eps``); those not given stay.
    """
    module.eps = eps
    module.decomposition = dataclasses.replace(module.decomposition,
                                               eps=eps, **changes)


def _values(name: str, value) -> str:
    """'name=v' for one value, 'name=v1/v2/...' for a dict by layer."""
    if isinstance(value, dict):
        return f'{name}=' + '/'.join(f'{v:g}' for v in value.values())
    return f'{name}={value}'


def eps_label(method: FinetuneMethod, meta) -> str:
    """A run's eps as comparisons show it: 'eps=0.8', one value per layer
    ('eps=0.8/0.9/...'), or how the method allocated it."""
    allocated = method.allocation_label(meta)
    return allocated or _values('eps', meta.get('eps'))


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
                   spatial_eps=Option(SPATIAL_EPS.default,
                                      per_layer(SPATIAL_EPS.check)),
                   allocate=Option(None, allocation(EPS.check, GRID,
                                                    SPATIAL)))
    per_layer = 'eps'
    paired = SPATIAL
    shares_input = True
    marker = 'D'
    order = 3

    def check_options(self, given):
        """As the base, and ``spatial_eps`` refused where the allocation
        chooses it (``allocate.spatial_grid``)."""
        options = super().check_options(given)
        if (self.paired_grid(options['allocate'])
                and options['spatial_eps'] is not None):
            raise ValueError(
                f"spatial_eps={options['spatial_eps']!r} is given and "
                'allocated (allocate.spatial_grid); give one or the other')
        return options

    def tag(self, options):
        return (super().tag(options) +
                ('' if options['warm_start'] else '-cold') +
                ('-keepbatch' if options['keep_batch'] else '') +
                _spatial_tag(options.get('spatial_eps'),
                             self.paired_grid(options.get('allocate'))))

    def budget_options(self, options):
        return {**options, 'keep_batch': False, 'spatial_eps': None}

    def budget_setting(self, value):
        return dict(eps=value, keep_batch=False, spatial_eps=None)

    def set_layer_setting(self, module, value):
        if isinstance(value, Mapping):
            set_eps(module, **value)
        else:
            set_eps(module, value)

    def label(self, meta):
        solver = meta.get('solver')
        spatial = meta.get('spatial_eps')
        return (eps_label(self, meta) +
                ('' if spatial is None else
                 ', ' + _values('spatial_eps', spatial)) +
                (f', {solver}' if solver not in (None, 'auto') else '') +
                (', cold start' if meta.get('warm_start') is False else '') +
                (', batch mode kept' if meta.get('keep_batch') else ''))


def _spatial_tag(spatial_eps, allocated) -> str:
    """The tag's part for the spatial modes' eps: '-spatial0.9',
    '-spatial-per-layer', '-spatial' where allocated, or ''."""
    if allocated:
        return '-spatial'
    if isinstance(spatial_eps, dict):
        return '-spatial-per-layer'
    return '' if spatial_eps is None else f'-spatial{spatial_eps:g}'

