"""Which convolutions to fine-tune: reference presets or the last N traced."""
import difflib
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from .layer_presets import CLASSIFIER, detect_preset, preset_layers


def conv_execution_order(model: nn.Module,
                         input_shape: Sequence[int] = (2, 3, 64, 64)
                         ) -> List[str]:
    """Names of the model's ``nn.Conv2d`` modules in the order they run.

    One forward of a random input through the segmentor's tensor path
    (``model._forward``: backbone, neck, decode head; no auxiliary head) in
    eval mode under ``no_grad``. A module that runs twice counts at its last
    call.

    Args:
        model: An mmseg segmentor (or any module whose ``_forward`` or
            ``forward`` takes an image batch).
        input_shape: Shape of the random input.

    Returns:
        Convolution names, first executed first.
    """
    order = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):

            def record(mod, inputs, output, name=name):
                order.pop(name, None)
                order[name] = len(order)

            handles.append(module.register_forward_hook(record))
    try:
        _trace(model, input_shape)
    finally:
        for handle in handles:
            handle.remove()
    return list(order)


def _trace(model: nn.Module, input_shape: Sequence[int]) -> None:
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        x = torch.randn(*input_shape, device=param.device, dtype=param.dtype)
        with torch.no_grad():
            getattr(model, '_forward', model)(x)
    finally:
        model.train(was_training)


def convs_reading_same_input(model: nn.Module,
                             names: Sequence[str],
                             input_shape: Sequence[int] = (2, 3, 64, 64)
                             ) -> List[List[str]]:
    """Groups of the named convolutions that read one and the same tensor.

    Args:
        model: The segmentor.
        names: Convolution names to consider.
        input_shape: Shape of the tracing input.

    Returns:
        Groups of two or more names (e.g. DeepLabV3's four ASPP branches).
    """
    readers = {}
    handles = []
    for name in names:

        def record(module, inputs, name=name):
            tensor = inputs[0]
            readers.setdefault(id(tensor), (tensor, []))[1].append(name)

        handles.append(model.get_submodule(name).register_forward_pre_hook(
            record))
    try:
        _trace(model, input_shape)
    finally:
        for handle in handles:
            handle.remove()
    groups = []
    for _, group in readers.values():
        unique = list(dict.fromkeys(group))
        if len(unique) > 1:
            groups.append(unique)
    return groups


def modules_after(model: nn.Module,
                  first: Sequence[str],
                  kinds: tuple,
                  input_shape: Sequence[int] = (2, 3, 64, 64)) -> List[str]:
    """Modules of the given kinds that run once any of ``first`` has run.

    Args:
        model: The segmentor.
        first: Module names; the earliest of them to run starts the region.
        kinds: Module classes to collect.
        input_shape: Shape of the tracing input.

    Returns:
        Names in execution order (first call).
    """
    order = []
    started = [False]
    handles = []
    targets = set(first)
    for name, module in model.named_modules():
        if name in targets or isinstance(module, kinds):

            def record(mod, inputs, name=name):
                if name in targets:
                    started[0] = True
                if started[0] and isinstance(mod, kinds) and name not in (
                        order):
                    order.append(name)

            handles.append(module.register_forward_pre_hook(record))
    try:
        _trace(model, input_shape)
    finally:
        for handle in handles:
            handle.remove()
    return order


def last_convs(model: nn.Module,
               num_layers: int,
               input_shape: Sequence[int] = (2, 3, 64, 64)) -> List[str]:
    """The last ``num_layers`` convolutions, decode head first, backwards.

    The classifier ``decode_head.conv_seg`` is excluded (it is trained, not
    compressed).

    Args:
        model: An mmseg segmentor.
        num_layers: How many convolutions.
        input_shape: Shape of the tracing input.

    Returns:
        Convolution names, the one nearest the output first.

    Raises:
        ValueError: If the model has fewer convolutions.
    """
    order = [
        n for n in reversed(conv_execution_order(model, input_shape))
        if n != CLASSIFIER
    ]
    if num_layers > len(order):
        raise ValueError(f'num_layers={num_layers} but the model has only '
                         f'{len(order)} convolutions before the classifier')
    return order[:num_layers]


def check_conv_names(model: nn.Module, names: Sequence[str]) -> None:
    """Checks that every name is an ``nn.Conv2d`` of the model.

    Args:
        model: The model.
        names: Module names.

    Raises:
        ValueError: Naming the first unknown or non-convolution module, with
            the closest existing names.
    """
    modules = dict(model.named_modules())
    for name in names:
        if name not in modules:
            close = difflib.get_close_matches(name, list(modules), n=3)
            raise ValueError(f'no module named {name!r} in the model; '
                             f'closest names: {close}')
        if not isinstance(modules[name], nn.Conv2d):
            raise ValueError(f'module {name!r} is a '
                             f'{type(modules[name]).__name__}, not an '
                             'nn.Conv2d; only convolutions can be compressed')


def check_module_names(model: nn.Module, names: Sequence[str]) -> None:
    """Checks that every name is a module of the model (clear error if not)."""
    modules = dict(model.named_modules())
    for name in names:
        if name not in modules:
            close = difflib.get_close_matches(name, list(modules), n=3)
            raise ValueError(f'no module named {name!r} in the model; '
                             f'closest names: {close}')


def select_layers(model: nn.Module,
                  num_layers: Optional[int] = None,
                  layers: Optional[Sequence[str]] = None,
                  preset: Optional[str] = 'auto',
                  input_shape: Sequence[int] = (2, 3, 64, 64)
                  ) -> Tuple[List[str], List[str], dict, Optional[str]]:
    """Convolutions to compress, extra trainable modules and preset radii.

    Args:
        model: An mmseg segmentor.
        num_layers: Number of fine-tuned convolutions (0 trains only the
            classifier).
        layers: Explicit convolution names instead of ``num_layers``.
        preset: 'auto' (detect the protocol model), a preset name, or None
            (trace the last ``num_layers`` convolutions).
        input_shape: Shape of the tracing input.

    Returns:
        ``(compress, trainable, radius, preset_used)``.

    Raises:
        ValueError: For both or neither of ``num_layers`` and ``layers``, a
            negative count, more layers than the model has, unknown names or
            names that are not convolutions.
    """
    if (num_layers is None) == (layers is None):
        raise ValueError('give exactly one of num_layers and layers, got '
                         f'num_layers={num_layers!r}, layers={layers!r}')
    if layers is not None:
        names = list(layers)
        if CLASSIFIER in names:
            raise ValueError(f'{CLASSIFIER!r} is always trained and never '
                             'compressed; remove it from layers')
        check_conv_names(model, names)
        return names, [], {}, None
    if isinstance(num_layers, bool) or not isinstance(
            num_layers, int) or num_layers < 0:
        raise ValueError(f'num_layers must be an int >= 0, got {num_layers!r}')
    if num_layers == 0:
        return [], [], {}, None
    used = detect_preset(model) if preset == 'auto' else preset
    if used is not None:
        try:
            compress, trainable, radius = preset_layers(used, num_layers)
        except ValueError:
            if preset != 'auto':
                raise
        else:
            check_conv_names(model, compress)
            check_module_names(model, trainable)
            return compress, trainable, radius, used
    return last_convs(model, num_layers, input_shape), [], {}, None
