"""Gradient Filter (Yang et al., CVPR 2023): r x r patch-constant gradients."""
from typing import Any, Dict, List

from ..layers.compressed_conv import Conv2dGradFilter
from .base import FinetuneMethod
from .options import Option, check_radius_option
from .registry import FINETUNE_METHODS

#: Radius of a layer that neither the config nor the preset gives one.
DEFAULT_RADIUS = 2


@FINETUNE_METHODS.register_module(name='gradient_filter')
class GradientFilter(FinetuneMethod):
    """Stores r x r patch means of each input; convolutions only (it has
    no Linear module, so selecting a Linear layer is refused).

    Option ``radius``: one int for every layer, a dict by layer name, or
    None for the preset's reference radii (:data:`DEFAULT_RADIUS` where the
    preset has none).
    """

    name = 'gradient_filter'
    tag_format = 'gradfilter'
    module = Conv2dGradFilter
    options = dict(radius=Option(None, check_radius_option))
    marker = 's'
    order = 1

    def label(self, meta):
        radii = meta.get('radii') or {}
        return 'r=' + '/'.join(str(r) for r in radii.values())

    def check_layers(self, options: Dict[str, Any],
                     compressed: List[str]) -> None:
        radius = options['radius']
        if isinstance(radius, dict):
            unknown = sorted(set(radius) - set(compressed))
            if unknown:
                raise ValueError(f'radius given for layers that are not '
                                 f'fine-tuned: {unknown}')

    def module_kwargs(self, name, options, preset_radius):
        radius = options['radius']
        if isinstance(radius, int):
            return dict(radius=radius)
        if isinstance(radius, dict):
            if name not in radius:
                raise ValueError(f'radius has no entry for layer {name!r}; '
                                 f'it has {sorted(radius)}')
            return dict(radius=radius[name])
        return dict(radius=preset_radius.get(name, DEFAULT_RADIUS))

    def results(self, modules, options):
        return dict(radii={n: m.radius for n, m in modules.items()})
