"""HOSVD-eps (the paper's method): a Tucker form of each input."""
import dataclasses
from collections.abc import Mapping

from ..layers.compressed_conv import Conv2dHOSVD
from ..layers.compressed_linear import LinearHOSVD
from ..ops import check_eps
from .base import FinetuneMethod
from .options import (
    EPS,
    KEEP_BATCH,
    SOLVER,
    WARM_START,
    Option,
    PairedSetting,
    allocation,
    per_layer,
)
from .registry import FINETUNE_METHODS

#: The eps values an allocation chooses from unless ``allocate.grid`` says.
GRID = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
#: The spatial eps values to pair with :data:`GRID` in
#: ``allocate.spatial_grid`` (what the protocol's row
#: ``hosvd-eps-alloc0.8-whole-keepbatch-spatial`` and the planner's
#: ``hosvd-eps-alloc0.8`` allocate from); without that key the spatial
#: modes take each layer's eps.
SPATIAL_GRID = (0.6, 0.7, 0.8, 0.9, 0.95)


def check_spatial_value(value: float) -> float:
    """One spatial eps of a per-layer dict or of ``allocate.spatial_grid``.

    Args:
        value: A number in (0, 1] (None, "the spatial modes take eps",
            is a value of the whole option only).

    Returns:
        ``value`` as a float.

    Raises:
        ValueError: For anything else, naming it.
    """
    return check_eps(value, 'spatial_eps')


def check_spatial_option(value):
    """The ``spatial_eps`` option: None, one spatial eps, or a dict of
    them by layer name."""
    return None if value is None else per_layer(check_spatial_value)(value)


#: The second setting an allocation may choose per layer: the spatial
#: modes' eps, from ``allocate.spatial_grid``.
SPATIAL = PairedSetting('spatial_eps', 'spatial_grid', check_spatial_value)


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
    ``warm_start``, ``keep_batch``, ``spatial_eps``, ``allocate``).

    ``eps`` is one value or a dict by layer name. ``keep_batch=True`` keeps
    the batch mode whole (every image its own slice of the core, the channel
    and spatial modes truncated at eps), which the paper's HOSVD truncates
    too. ``spatial_eps`` (one value or a dict by layer name) truncates the
    spatial modes (height and width; a Linear input's token modes) at their
    own threshold; a value equal to ``eps`` is the same decomposition and is
    dropped. ``allocate`` (e.g. ``dict(budget_of=0.8)``) picks each layer's
    eps from ``grid`` on the first labelled batches: the least summed
    weight-gradient error whose stored bytes fit the budget (see
    :mod:`mmseg_hosvd.planning`); ``budget_of`` is the bytes of the paper's
    HOSVD at that eps, the batch mode truncated, whatever ``keep_batch`` is.
    Where no kept-batch choice fits those bytes (a small batch the paper's
    HOSVD truncates), the allocation may also give a layer the paper's HOSVD
    at ``budget_of``, so it always fits; such a layer's setting is
    ``dict(eps=..., keep_batch=False, spatial_eps=None)``. With
    ``allocate.spatial_grid`` each layer gets an eps and a spatial eps,
    ``dict(eps=..., spatial_eps=...)``, from every pair of the two grids.
    """

    name = 'hosvd'
    tag_format = 'hosvd-eps{eps:g}'
    module = Conv2dHOSVD
    linear_module = LinearHOSVD
    options = dict(eps=Option(EPS.default, per_layer(EPS.check)),
                   solver=SOLVER, warm_start=WARM_START,
                   keep_batch=KEEP_BATCH,
                   spatial_eps=Option(None, check_spatial_option),
                   allocate=Option(None, allocation(EPS.check, GRID,
                                                    SPATIAL)))
    per_layer = 'eps'
    paired = SPATIAL
    shares_input = True
    marker = 'D'
    order = 3

    def check_options(self, given):
        """As the base; ``spatial_eps`` equal to a single ``eps`` dropped
        (the same decomposition), and refused where the allocation chooses
        it (``allocate.spatial_grid``) or where it is per layer and the
        allocation measures one setting on every layer."""
        options = super().check_options(given)
        spatial, allocate = options['spatial_eps'], options['allocate']
        if spatial is not None and self.paired_grid(allocate):
            raise ValueError(
                f'spatial_eps={spatial!r} is given and allocated '
                '(allocate.spatial_grid); give one or the other')
        if isinstance(spatial, dict) and allocate is not None:
            raise ValueError(
                'spatial_eps is given per layer, and allocate measures one '
                'setting on every layer: give one spatial_eps, or allocate '
                'it too with allocate.spatial_grid')
        if spatial == options['eps']:
            options['spatial_eps'] = None
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
