"""What defines a fine-tuning method; everything else reads it from here."""
from typing import Any, Dict, List, Optional, Tuple, Type

from torch import nn

from .options import Option, PairedSetting
from .session import MethodSession


class FinetuneMethod:
    """A fine-tuning method: its modules, options, tag, label and marker.

    Subclass it in one small file and register the class in
    :data:`~.registry.FINETUNE_METHODS` under the method's name.

    Attributes:
        name: The method's name; the registry key when left unset.
        tag_format: Its config-name tag, filled in with the checked
            options (e.g. ``'svd-eps{eps:g}'``); empty for the name.
        module: The ``nn.Conv2d`` subclass swapped in for each fine-tuned
            convolution (built with ``module.from_conv(conv, **kwargs)``),
            or None to train the plain convolutions.
        linear_module: The ``nn.Linear`` subclass swapped in for each
            fine-tuned Linear layer (built with
            ``linear_module.from_linear(linear, **kwargs)``, with the same
            keyword arguments), or None: a method without ``module`` either
            then trains the plain Linear layers, one with ``module`` cannot
            fine-tune Linear layers (:meth:`module_for` refuses them).
        options: The options it accepts, with defaults and checks.
        shares_input: Whether layers reading one tensor share one
            decomposition (passed to the module as ``shared_input``).
        marker: Matplotlib marker of its points in comparisons.
        lean_marker: The marker of its lean-region variant.
        order: Its place among the methods in tables (low first).
        per_layer: The option that may be given per layer (a dict by layer
            name) and that an allocation by gradient error sets (its
            options then include ``allocate``); empty for none.
        paired: A second option that may be given per layer and that an
            allocation may choose with :attr:`per_layer`
            (:class:`~.options.PairedSetting`); None for none.
    """

    name: str = ''
    tag_format: str = ''
    module: Optional[Type[nn.Conv2d]] = None
    linear_module: Optional[Type[nn.Linear]] = None
    options: Dict[str, Option] = {}
    shares_input: bool = False
    marker: str = 'x'
    lean_marker: str = 'X'
    order: int = 50
    per_layer: str = ''
    paired: Optional[PairedSetting] = None

    @property
    def per_layer_options(self) -> Tuple[str, ...]:
        """The options that may be given per layer: :attr:`per_layer` and
        :attr:`paired`'s."""
        return tuple(name for name in (
            self.per_layer, self.paired.option if self.paired else '')
                     if name)

    def paired_grid(self, allocation: Optional[Dict[str, Any]]
                    ) -> Optional[list]:
        """The values of :attr:`paired` that an allocation chooses from.

        Args:
            allocation: The checked ``allocate`` option, or None.

        Returns:
            The paired grid's values, or None where the allocation sets
            :attr:`per_layer` alone (or there is none).
        """
        if not allocation or self.paired is None:
            return None
        return allocation.get(self.paired.grid_key)

    def allocated_settings(self, allocation: Optional[Dict[str, Any]]
                           ) -> str:
        """What an allocation sets per layer, as logs and labels name it.

        Args:
            allocation: The checked ``allocate`` option, or None.

        Returns:
            :attr:`per_layer` ('eps'), or with the paired grid both
            ('eps and spatial_eps').
        """
        if self.paired_grid(allocation):
            return f'{self.per_layer} and {self.paired.option}'
        return self.per_layer

    def check_options(self, given: Dict[str, Any]) -> Dict[str, Any]:
        """The method's options with defaults filled in, each checked.

        Args:
            given: Options from the config, already known to be accepted.

        Returns:
            Every option of :attr:`options`, in their order.
        """
        return {
            key: option.check(given.get(key, option.default))
            for key, option in self.options.items()
        }

    def tag(self, options: Dict[str, Any]) -> str:
        """The config-name tag of these options (e.g. 'hosvd-eps0.8'):
        :attr:`tag_format` filled in with them, or the name.

        A per-layer setting makes it '<prefix>-per-layer', an allocation
        '<prefix>-alloc<budget_of>' or '<prefix>-alloc<budget_mb>MB' (with
        '-whole' for the criterion 'whole'), the prefix being the format's
        text before its first field (e.g. 'hosvd-eps-alloc0.8').
        """
        if self.per_layer:
            prefix = self.tag_format.split('{')[0].rstrip('-') or self.name
            allocation = options.get('allocate')
            if allocation is not None:
                whole = ('-whole' if allocation['criterion'] == 'whole' else
                         '')
                if allocation['budget_of'] is not None:
                    return (f"{prefix}-alloc{allocation['budget_of']:g}"
                            f'{whole}')
                return f"{prefix}-alloc{allocation['budget_mb']:g}MB{whole}"
            if isinstance(options[self.per_layer], dict):
                return f'{prefix}-per-layer'
        return self.tag_format.format(**options) or self.name

    def label(self, meta: Dict[str, Any]) -> str:
        """The setting shown beside the method in comparisons.

        Args:
            meta: The fine-tuning plan as kept with the checkpoint
                (:meth:`~mmseg_hosvd.models.FinetunePlan.to_meta`).
        """
        return ''

    def allocation_label(self, meta: Dict[str, Any]) -> str:
        """How a run's per-layer setting was allocated (e.g. 'eps by
        gradient error in the bytes of eps 0.8'), or '' for none; the
        same for every seed, whose allocations differ. A grid other than
        the method's default and more than one measured batch are named,
        so that allocations from different candidates are not one row."""
        allocation = meta.get('allocate')
        if not self.per_layer or not allocation:
            return ''
        budget_of = allocation.get('budget_of')
        budget = (f'the bytes of {self.per_layer} {budget_of:g}'
                  if budget_of is not None else
                  f"{allocation['budget_mb']:g} MB")
        error = ('whole-gradient error' if allocation.get('criterion') ==
                 'whole' else 'gradient error')
        second = self.paired_grid(allocation)
        label = (f'{self.allocated_settings(allocation)} by {error} in '
                 f'{budget}')
        default = self.options['allocate'].check(
            dict(budget_of=budget_of) if budget_of is not None else
            dict(budget_mb=allocation['budget_mb']))['grid']
        grid = allocation.get('grid', default)
        if list(grid) != list(default):
            label += ', grid ' + '/'.join(f'{v:g}' for v in grid)
        if second:
            label += (f', {self.paired.grid_key} ' +
                      '/'.join(f'{v:g}' for v in second))
        batches = allocation.get('batches', 1)
        if batches != 1:
            label += f', {batches} batches'
        return label

    def check_layers(self, options: Dict[str, Any],
                     compressed: List[str]) -> None:
        """Checks the options against the selected layers.

        The base checks the per-layer settings
        (:attr:`per_layer_options`): each given as a dict must give every
        compressed layer a value and name no other.

        Raises:
            ValueError: For an option that names layers not fine-tuned, or
                a per-layer setting that misses one.
        """
        for option in self.per_layer_options:
            values = options.get(option)
            if not isinstance(values, dict):
                continue
            unknown = sorted(set(values) - set(compressed))
            missing = [name for name in compressed if name not in values]
            if unknown:
                raise ValueError(f'{option} given for layers that '
                                 f'are not fine-tuned: {unknown}; the '
                                 f'fine-tuned layers are {compressed}')
            if missing:
                raise ValueError(f'{option} has no value for the '
                                 f'fine-tuned layers {missing}')

    def module_kwargs(self, name: str, options: Dict[str, Any],
                      preset_radius: Dict[str, int]) -> Dict[str, Any]:
        """Keyword arguments of ``from_conv`` / ``from_linear`` for one layer.

        Args:
            name: The layer's name.
            options: The checked options.
            preset_radius: The layer preset's Gradient Filter radii.
        """
        return self.layer_options(name, options)

    def layer_options(self, name: str,
                      options: Dict[str, Any]) -> Dict[str, Any]:
        """``options`` for one layer: its own value of each per-layer
        setting, without ``allocate`` (which the hook, not the module, acts
        on)."""
        kwargs = {k: v for k, v in options.items() if k != 'allocate'}
        for option in self.per_layer_options:
            if isinstance(kwargs.get(option), dict):
                kwargs[option] = kwargs[option][name]
        return kwargs

    def budget_options(self, options: Dict[str, Any]) -> Dict[str, Any]:
        """The options whose uniform setting an allocation's ``budget_of``
        means (``options`` itself unless the method says otherwise)."""
        return options

    def budget_setting(self, value: Any) -> Any:
        """The per-layer setting that stores what :meth:`budget_options`
        at ``value`` stores, for an allocation that falls back to it on
        some layers (``value`` itself unless the method says otherwise)."""
        return value

    def set_layer_setting(self, module: nn.Module, value: Any) -> None:
        """Sets the per-layer setting of a built module (an allocation's
        choice); the base sets the attribute of that name."""
        setattr(module, self.per_layer, value)

    @property
    def converts(self) -> bool:
        """Whether the method swaps any layer for a module of its own."""
        return self.module is not None or self.linear_module is not None

    def module_for(self, name: str, layer: nn.Module) -> Optional[type]:
        """The class that replaces ``layer``, or None to train it plain.

        Args:
            name: The layer's name.
            layer: An ``nn.Conv2d`` or ``nn.Linear`` (mmcv's too).

        Raises:
            ValueError: For a Linear layer, naming it, when the method
                compresses convolutions but has no Linear module.
        """
        if not isinstance(layer, nn.Linear):
            return self.module
        if self.linear_module is None and self.module is not None:
            raise ValueError(
                f'layer {name!r} is an nn.Linear, and method '
                f'{self.name!r} compresses only convolutions (it has no '
                'Linear module); select convolutions only with `layers`, or '
                'choose a method that compresses Linear layers')
        return self.linear_module

    def build(self, name: str, layer: nn.Module, options: Dict[str, Any],
              preset_radius: Dict[str, int],
              shared_input=None) -> nn.Module:
        """The module that replaces ``layer``, sharing its Parameters.

        Args:
            name: The layer's name.
            layer: An ``nn.Conv2d`` or ``nn.Linear`` that
                :meth:`module_for` gives a class for.
            options: The checked options.
            preset_radius: The layer preset's Gradient Filter radii.
            shared_input: The decomposition cache of the layer's
                shared-input group, or None.
        """
        cls = self.module_for(name, layer)
        kwargs = self.module_kwargs(name, options, preset_radius)
        if self.shares_input:
            kwargs['shared_input'] = shared_input
        if isinstance(layer, nn.Linear):
            return cls.from_linear(layer, **kwargs)
        return cls.from_conv(layer, **kwargs)

    def results(self, modules: Dict[str, nn.Module],
                options: Dict[str, Any]) -> Dict[str, Any]:
        """What the plan records about the built modules (e.g. radii)."""
        return {}

    def session(self, plan) -> Optional[MethodSession]:
        """Per-run state for the hook to drive, or None."""
        return None
