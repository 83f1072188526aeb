"""Which layers to fine-tune: reference presets or the last N traced.

The layers that can be fine-tuned and compressed are the convolutions and
the Linear layers (:data:`COMPRESSIBLE`; mmcv's ``Linear`` subclasses
``nn.Linear``).

The rules are pure functions of one :class:`~.model_trace.ModelTrace`; the
functions taking a model trace it once themselves.
"""
import difflib
import warnings
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

from torch import nn

from .layer_presets import CLASSIFIER, PRESETS, detect_preset, preset_layers
from .model_trace import ModelTrace, execution_order, trace_model

#: The module classes a method can fine-tune and compress.
COMPRESSIBLE = (nn.Conv2d, nn.Linear)


class LayerSelection(NamedTuple):
    """The fine-tuned layers of a model.

    Attributes:
        compress: Convolutions and Linear layers to compress, the one
            nearest the output first.
        trainable: Extra modules trained without compression (a preset's).
        radius: A preset's Gradient Filter radius per layer.
        preset: The preset used, or None.
    """
    compress: List[str]
    trainable: List[str]
    radius: dict
    preset: Optional[str]


def conv_execution_order(model: nn.Module,
                         input_shape: Sequence[int] = (2, 3, 64, 64)
                         ) -> List[str]:
    """Names of the model's ``nn.Conv2d`` modules in the order they run.

    One traced forward of a random input (see
    :func:`~.model_trace.trace_model`); a module that runs twice counts at
    its last call.

    Args:
        model: An mmseg segmentor (or any module taking an image batch).
        input_shape: Shape of the random input.

    Returns:
        Convolution names, first executed first.
    """
    return execution_order(trace_model(model, input_shape=input_shape))


def last_convs_of(trace: ModelTrace, num_layers: int) -> List[str]:
    """The last ``num_layers`` traced layers, nearest the output first.

    Convolutions and Linear layers count alike, each at its last call; a
    layer that never runs as a module (``nn.MultiheadAttention`` calls its
    projections functionally) is not among them.

    The classifier ``decode_head.conv_seg`` is excluded (it is trained, not
    compressed).

    Args:
        trace: The model's trace.
        num_layers: How many layers.

    Returns:
        Layer names, the one nearest the output first.

    Raises:
        ValueError: If the model has fewer such layers.
    """
    order = [
        n for n in reversed(execution_order(trace, COMPRESSIBLE))
        if n != CLASSIFIER
    ]
    if num_layers > len(order):
        raise ValueError(f'num_layers={num_layers} but the model has only '
                         f'{len(order)} convolutions and Linear layers '
                         'before the classifier')
    return order[:num_layers]


def last_convs(model: nn.Module,
               num_layers: int,
               input_shape: Sequence[int] = (2, 3, 64, 64)) -> List[str]:
    """:func:`last_convs_of` on a fresh trace of ``model``."""
    return last_convs_of(trace_model(model, input_shape=input_shape),
                         num_layers)


def module_names(value: Union[str, Sequence[str]], option: str) -> List[str]:
    """Module names given as one name or a list of names.

    A single string is one name, as in MMEngine's ``init_cfg``
    (``layer='Conv2d'`` or ``layer=['Conv2d', 'Linear']``), never a
    sequence of one-letter names.

    Args:
        value: One module name, or a list or tuple of them.
        option: The option it was given as, for the message.

    Returns:
        The names, as a list.

    Raises:
        ValueError: If it is neither, or holds something else than strings.
    """
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(
            isinstance(name, str) for name in names):
        raise ValueError(f'{option} must be a module name or a list of '
                         f'module names, got {value!r}')
    return list(names)


def layer_names(layers: Union[str, Sequence[str]]) -> List[str]:
    """The ``layers`` option: one layer name or a non-empty list of them.

    Raises:
        ValueError: For anything else, or no layer at all.
    """
    names = module_names(layers, 'layers')
    if not names:
        raise ValueError(f'layers={layers!r} selects no layer to fine-tune; '
                         'to train only the classifier, give num_layers=0 '
                         'instead of layers')
    return names


def check_module_names(model: nn.Module, names: Sequence[str],
                       kind: Union[None, type, Tuple[type, ...]] = None
                       ) -> None:
    """Checks that every name is a module of the model, of ``kind`` if given.

    Args:
        model: The model.
        names: Module names.
        kind: Required class or classes (e.g. ``nn.Conv2d``), or None.

    Raises:
        ValueError: Naming the first unknown module with the closest
            existing names, or the first module of another class.
    """
    modules = dict(model.named_modules())
    for name in names:
        if name not in modules:
            close = difflib.get_close_matches(name, list(modules), n=3)
            raise ValueError(f'no module named {name!r} in the model; '
                             f'closest names: {close}')
        if kind is not None and not isinstance(modules[name], kind):
            kinds = kind if isinstance(kind, tuple) else (kind, )
            wanted = ' or '.join(f'nn.{k.__name__}' for k in kinds)
            raise ValueError(f'module {name!r} is a '
                             f'{type(modules[name]).__name__}, not an '
                             f'{wanted}; only those can be compressed')


def check_conv_names(model: nn.Module, names: Sequence[str]) -> None:
    """Checks that every name is an ``nn.Conv2d`` or ``nn.Linear`` of the
    model that runs as a module.

    Raises:
        ValueError: For an unknown name, another class, or a projection of
            an ``nn.MultiheadAttention`` (which it calls functionally, so
            swapping it would compress nothing).
    """
    check_module_names(model, names, COMPRESSIBLE)
    for name in names:
        parent = name.rpartition('.')[0]
        if isinstance(model.get_submodule(parent),
                      nn.MultiheadAttention):
            raise ValueError(
                f'{name!r} belongs to an nn.MultiheadAttention, which calls '
                'its projections functionally: it cannot be compressed')


def select_layers_of(model: nn.Module,
                     trace: ModelTrace,
                     num_layers: Optional[int] = None,
                     layers: Union[None, str, Sequence[str]] = None,
                     preset: Optional[str] = 'auto') -> LayerSelection:
    """Layers to compress, extra trainable modules and preset radii.

    Args:
        model: An mmseg segmentor (for name checks and preset detection).
        trace: Its trace.
        num_layers: Number of fine-tuned layers (0 trains only the
            classifier).
        layers: Explicit layer names instead of ``num_layers`` (one name
            or a non-empty list; see :func:`layer_names`).
        preset: 'auto' (detect the protocol model), a preset name, or None
            (the last ``num_layers`` traced convolutions and Linear
            layers).

    Returns:
        The :class:`LayerSelection`.

    Raises:
        ValueError: For both or neither of ``num_layers`` and ``layers``, a
            negative count, more layers than the model has, an empty
            ``layers``, unknown names or names that are not convolutions or
            Linear layers.
    """
    if (num_layers is None) == (layers is None):
        raise ValueError('give exactly one of num_layers and layers, got '
                         f'num_layers={num_layers!r}, layers={layers!r}')
    if layers is not None:
        names = layer_names(layers)
        if CLASSIFIER in names:
            raise ValueError(f'{CLASSIFIER!r} is always trained and never '
                             'compressed; remove it from layers')
        check_conv_names(model, names)
        return LayerSelection(names, [], {}, None)
    if isinstance(num_layers, bool) or not isinstance(
            num_layers, int) or num_layers < 0:
        raise ValueError(f'num_layers must be an int >= 0, got {num_layers!r}')
    if num_layers == 0:
        return LayerSelection([], [], {}, None)
    used = detect_preset(model) if preset == 'auto' else preset
    if used is not None:
        try:
            compress, trainable, radius = preset_layers(used, num_layers)
        except ValueError:
            if preset != 'auto':
                raise
            _warn_preset_dropped(used, num_layers)
        else:
            check_conv_names(model, compress)
            check_module_names(model, trainable)
            return LayerSelection(compress, trainable, radius, used)
    return LayerSelection(last_convs_of(trace, num_layers), [], {}, None)


def _warn_preset_dropped(preset: str, num_layers: int) -> None:
    """Says what a detected preset would have given that the traced
    selection for ``num_layers`` does not."""
    counts = sorted(PRESETS[preset].compress)
    extras = {n: PRESETS[preset].trainable[n] for n in counts}
    warnings.warn(
        f'the model is the protocol\'s {preset!r}, whose reference lists '
        f'have {counts} layers, not {num_layers}: taking the last '
        f'{num_layers} traced convolutions and Linear layers instead, '
        f'without the preset\'s extra trainable modules ({extras}) and '
        'Gradient Filter radii (2 everywhere); use num_layers in '
        f'{counts} for the reference set-up, or preset=None to silence this',
        UserWarning, stacklevel=3)


def select_layers(model: nn.Module,
                  num_layers: Optional[int] = None,
                  layers: Union[None, str, Sequence[str]] = None,
                  preset: Optional[str] = 'auto',
                  input_shape: Sequence[int] = (2, 3, 64, 64)
                  ) -> LayerSelection:
    """:func:`select_layers_of` on a fresh trace of ``model``.

    Returns:
        ``(compress, trainable, radius, preset_used)`` as a
        :class:`LayerSelection`.
    """
    return select_layers_of(model, trace_model(model, input_shape=input_shape),
                            num_layers, layers, preset)
