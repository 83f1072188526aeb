"""The set-ups a planner weighs, each as overrides of a user's config.

A set-up keeps what the user's ``CompressConvHook`` fine-tunes (its
``num_layers`` or ``layers``, ``trainable``, ``preset``) and changes how:
the method and its options, the exact reductions (the frozen prefix in
micro-batches of one image, the decode head's loss one image at a time),
activation checkpointing, gradient accumulation over micro-batches of
four, two or one image, or mixed precision (bfloat16 autocast). Every other
hook and setting of the config stays.
"""
import copy
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ..methods import get_method
from ..methods.hosvd import SPATIAL_GRID
from ..reductions.describe import MIXED_PRECISION_WRAPPERS

#: Hook types a set-up decides on (the user's are replaced).
SETUP_HOOKS = ('CompressConvHook', 'FrozenPrefixHook', 'ChunkedLossHook',
               'ActivationCheckpointHook', 'AutocastErrorHook')
#: The optimizer wrapper of a mixed-precision set-up (as the protocol's
#: ``-amp`` rows: bfloat16 autocast, on CPU and CUDA alike).
AUTOCAST_WRAPPER = dict(type='AutocastOptimWrapper', dtype='bfloat16')
#: What a set-up keeps of the user's ``CompressConvHook``.
SELECTION_KEYS = ('num_layers', 'layers', 'trainable', 'preset',
                  'norm_eval', 'trace_input_shape')
EXACT_REDUCTIONS = (dict(type='FrozenPrefixHook', micro_batch=1),
                    dict(type='ChunkedLossHook', chunk=1))


@dataclass(frozen=True)
class SetUp:
    """One way to fine-tune the same layers.

    Attributes:
        name: Its name in the planner's table and ``--setups``.
        method: The ``CompressConvHook`` method.
        options: The method's options (and ``lean``, ``lean_eps``).
        exact: Whether its gradients are those of vanilla fine-tuning.
        reductions: Whether it runs the exact reductions.
        checkpointing: Whether the fine-tuned blocks are recomputed in
            backward (``ActivationCheckpointHook``).
        micro_batch: Gradient accumulation over micro-batches of this many
            images (one optimizer step per iteration), or None.
        autocast: Whether the forward runs under bfloat16 autocast
            (:data:`AUTOCAST_WRAPPER`).
    """
    name: str
    method: str
    options: Dict[str, Any] = field(default_factory=dict)
    exact: bool = False
    reductions: bool = True
    checkpointing: bool = False
    micro_batch: Optional[int] = None
    autocast: bool = False

    @property
    def measured_option(self) -> Optional[Tuple[str, Any]]:
        """(option, value) whose weight-gradient error a probe run
        measures, for a compressed set-up with one value on every layer;
        None for an exact set-up, one that allocates its own, or a method
        without a per-layer setting (vanilla under autocast)."""
        key = get_method(self.method).per_layer
        if self.exact or 'allocate' in self.options or not key:
            return None
        return key, self.options[key]


LEAN = dict(lean=True, lean_eps=dict(norm=0.8, classifier=0.99))

#: The set-ups the planner knows, exact ones first.
SETUPS = (
    SetUp('vanilla', 'vanilla', exact=True, reductions=False),
    SetUp('vanilla-exact', 'vanilla', exact=True),
    SetUp('vanilla-exact-ckpt', 'vanilla', exact=True, checkpointing=True),
    SetUp('vanilla-exact-mb4', 'vanilla', exact=True, micro_batch=4),
    SetUp('vanilla-exact-mb2', 'vanilla', exact=True, micro_batch=2),
    SetUp('vanilla-exact-mb1', 'vanilla', exact=True, micro_batch=1),
    SetUp('hosvd-eps0.9', 'hosvd', dict(eps=0.9)),
    SetUp('hosvd-eps0.8', 'hosvd', dict(eps=0.8)),
    SetUp('hosvd-eps-alloc0.8', 'hosvd',
          dict(allocate=dict(budget_of=0.8, criterion='whole',
                             spatial_grid=list(SPATIAL_GRID)),
               keep_batch=True)),
    SetUp('hosvd-eps0.8-lean', 'hosvd', dict(eps=0.8, **LEAN)),
    SetUp('hosvd-eps0.8-lean-mb1', 'hosvd', dict(eps=0.8, **LEAN),
          micro_batch=1),
    SetUp('vanilla-exact-amp', 'vanilla', autocast=True),
    SetUp('hosvd-eps0.8-lean-amp', 'hosvd', dict(eps=0.8, **LEAN),
          autocast=True),
    SetUp('qact8', 'quantized', dict(bits=8)),
    SetUp('qact2', 'quantized', dict(bits=2)),
)


def setup_names() -> List[str]:
    """The names of :data:`SETUPS`, in order."""
    return [s.name for s in SETUPS]


def get_setup(name: str) -> SetUp:
    """The set-up called ``name``.

    Raises:
        ValueError: Naming the unknown set-up and the known ones.
    """
    for setup in SETUPS:
        if setup.name == name:
            return setup
    raise ValueError(f'unknown set-up {name!r}; choose from {setup_names()}')


def inapplicable(setup: SetUp, batch_size: int) -> Optional[str]:
    """Why ``setup`` cannot train batches of ``batch_size`` images.

    Accumulation needs micro-batches that divide the batch and are smaller
    than it (a micro-batch of the whole batch is ``vanilla-exact``).

    Args:
        setup: The set-up.
        batch_size: The config's training batch size.

    Returns:
        The reason, naming the set-up and the batch size, or None when it
        applies.
    """
    micro = setup.micro_batch
    if micro is None or (micro < batch_size and batch_size % micro == 0):
        return None
    return (f'set-up {setup.name!r} accumulates micro-batches of {micro} '
            f'image(s), which needs a larger batch size divisible by '
            f'{micro}; the config has {batch_size}')


#: The most fine-tuned layers at which checkpointing is not measured
#: unless named: at 5 layers it lowered no whole-step peak of the eight
#: protocol models (1.00-1.12x of ``vanilla-exact``'s at 128 px; DeepLabV3
#: 1.00x and PSPNet 1.15x at 512 px), at 20 it lowered DeepLabV3's to
#: 0.61x (512 px).
CHECKPOINTING_SKIPPED_UP_TO = 5


def finetuned_layer_count(hook: dict) -> Optional[int]:
    """How many layers a ``CompressConvHook`` entry fine-tunes.

    Args:
        hook: The config's ``CompressConvHook`` entry.

    Returns:
        Its ``num_layers`` (an int), or the number of its ``layers`` (one
        name or a sequence); None when it gives neither, when
        ``num_layers`` is not an int (the hook itself names the bad value)
        or when ``trainable`` widens what trains (whole modules, whose
        layers this does not count).
    """
    if hook.get('trainable'):
        return None
    count = hook.get('num_layers')
    if count is not None:
        return count if type(count) is int else None
    layers = hook.get('layers')
    if layers is None:
        return None
    return 1 if isinstance(layers, str) else len(layers)


def skipped_by_default(setup: SetUp, layer_count: Optional[int]
                       ) -> Optional[str]:
    """Why the planner measures ``setup`` only when ``--setups`` names it.

    Args:
        setup: The set-up.
        layer_count: The layers the config fine-tunes
            (:func:`finetuned_layer_count`), or None when unknown.

    Returns:
        The reason, naming the set-up and the layer count, for
        checkpointing at up to :data:`CHECKPOINTING_SKIPPED_UP_TO` layers;
        else None.
    """
    if (not setup.checkpointing or layer_count is None
            or layer_count > CHECKPOINTING_SKIPPED_UP_TO):
        return None
    return (f'set-up {setup.name!r}: the config fine-tunes {layer_count} '
            f'layer(s), and checkpointing lowered no whole-step peak of the '
            f'protocol models at {CHECKPOINTING_SKIPPED_UP_TO} (name it in '
            '--setups to measure it)')


def optim_wrapper_of(setup: SetUp, user_wrapper) -> Dict[str, Any]:
    """The optimizer-wrapper keys of ``setup`` over the user's wrapper.

    Under autocast the user's wrapper becomes :data:`AUTOCAST_WRAPPER`; a
    set-up without autocast trains in float32, so a user's mixed-precision
    wrapper becomes MMEngine's ``OptimWrapper``. Either way the entry
    replaces the base config's (``_delete_``), keeping the optimizer and
    the other settings and dropping the options only the mixed-precision
    wrappers take (``loss_scale``, ``dtype``, ``use_fsdp``). Accumulation
    adds ``accumulative_counts`` (set by the caller).

    Args:
        setup: The set-up.
        user_wrapper: The config's ``optim_wrapper``.

    Returns:
        The keys to merge into ``optim_wrapper`` (empty when the user's
        float32 wrapper stays as it is).
    """
    kind = user_wrapper.get('type', 'OptimWrapper')
    if not setup.autocast and kind not in MIXED_PRECISION_WRAPPERS:
        return {}
    kept = {k: copy.deepcopy(v) for k, v in dict(user_wrapper).items()
            if k not in ('type', 'loss_scale', 'dtype', 'use_fsdp')}
    wrapper = AUTOCAST_WRAPPER if setup.autocast else dict(
        type='OptimWrapper')
    return dict(_delete_=True, **wrapper, **kept)


def compress_hook_of(cfg) -> dict:
    """The config's ``CompressConvHook`` entry.

    Raises:
        ValueError: When the config has none (naming the config's hooks).
    """
    hooks = [h for h in cfg.get('custom_hooks', [])
             if h.get('type') == 'CompressConvHook']
    if len(hooks) != 1:
        types = [h.get('type') for h in cfg.get('custom_hooks', [])]
        raise ValueError(
            'the planner needs a fine-tuning config with one '
            f'CompressConvHook (which layers to fine-tune); its custom_hooks '
            f'are {types}')
    return hooks[0]


def setup_overrides(cfg, setup: SetUp,
                    probe: bool = False) -> Dict[str, Any]:
    """The config keys that turn ``cfg`` into ``setup``.

    Args:
        cfg: The user's config (an MMEngine ``Config``).
        setup: The set-up.
        probe: Also measure the weight-gradient error of a compressed
            set-up's one value (an allocation whose grid is that value and
            whose budget holds it: it chooses that value and logs its
            error, and leaves training as it was), and of autocast
            (``AutocastErrorHook``).

    Returns:
        ``custom_hooks``; ``optim_wrapper`` for accumulation, for mixed
        precision and for a user's mixed-precision wrapper
        (:func:`optim_wrapper_of`); ``train_dataloader`` and ``train_cfg``
        for accumulation (to merge into ``cfg``).

    Raises:
        ValueError: For a config without one ``CompressConvHook``, or an
            accumulation set-up the config's batch size cannot take
            (:func:`inapplicable`).
    """
    user_hook = compress_hook_of(cfg)
    hook = dict(type='CompressConvHook', method=setup.method,
                **copy.deepcopy(setup.options))
    hook.update({k: copy.deepcopy(user_hook[k]) for k in SELECTION_KEYS
                 if k in user_hook})
    measured = setup.measured_option
    if probe and measured is not None:
        hook['allocate'] = dict(grid=[measured[1]], budget_mb=1e6)
    hooks = [hook] + [copy.deepcopy(h) for h in cfg.get('custom_hooks', [])
                      if h.get('type') not in SETUP_HOOKS]
    if setup.reductions:
        hooks += [dict(h) for h in EXACT_REDUCTIONS]
    if setup.checkpointing:
        hooks.append(dict(type='ActivationCheckpointHook'))
    if setup.autocast and probe:
        hooks.append(dict(type='AutocastErrorHook'))
    overrides: Dict[str, Any] = dict(custom_hooks=hooks)
    wrapper = optim_wrapper_of(setup, cfg.optim_wrapper)
    if setup.micro_batch is not None:
        batch = cfg.train_dataloader.batch_size
        reason = inapplicable(setup, batch)
        if reason is not None:
            raise ValueError(reason)
        wrapper['accumulative_counts'] = batch // setup.micro_batch
        overrides.update(
            train_dataloader=dict(batch_size=setup.micro_batch),
            train_cfg=dict(type='SeededIterBasedTrainLoop',
                           whole_steps=True))
    if wrapper:
        overrides['optim_wrapper'] = wrapper
    return overrides
