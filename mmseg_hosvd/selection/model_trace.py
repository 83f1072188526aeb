"""One traced forward that describes a model for every selection rule.

:func:`trace_model` runs the segmentor's tensor path once with a forward
pre-hook on every module and records which module ran when and which tensor
it read. Last-N selection, shared-input groups and the lean region's
"modules after" are pure functions of that record.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn


@dataclass
class ModelTrace:
    """What one forward did.

    Attributes:
        calls: ``(module name, input index)`` per module call, in call
            order (pre-hook order, containers included). Calls reading the
            same tensor as first argument share an input index; a first
            argument that is not a tensor has index None.
        types: Class of each named module at trace time.
        inputs: First input tensor of each module named in ``capture``
            (its last call), detached.
    """

    calls: List[Tuple[str, Optional[int]]] = field(default_factory=list)
    types: Dict[str, type] = field(default_factory=dict)
    inputs: Dict[str, torch.Tensor] = field(default_factory=dict)


def trace_model(model: nn.Module,
                inputs: Optional[torch.Tensor] = None,
                input_shape: Sequence[int] = (2, 3, 64, 64),
                capture: Sequence[str] = (),
                eval_mode: bool = True) -> ModelTrace:
    """Runs ``model`` once under ``no_grad`` and records its calls.

    The forward is ``model._forward`` (backbone, neck, decode head; no
    auxiliary head) where the model has it, else ``model.forward``.

    Args:
        model: An mmseg segmentor, or any module taking an image batch.
        inputs: The batch; a random one of ``input_shape`` when None.
        input_shape: Shape of the random batch.
        capture: Names of modules whose input tensor is kept.
        eval_mode: Trace in eval mode (restored afterwards); False keeps
            the model's current mode.

    Returns:
        The :class:`ModelTrace`.
    """
    trace = ModelTrace()
    tensor_index: Dict[int, int] = {}
    alive: List[torch.Tensor] = []  # keeps ids unique during the forward
    wanted = set(capture)
    handles = []
    for name, module in model.named_modules():
        trace.types[name] = type(module)

        def record(mod, args, name=name):
            first = args[0] if args else None
            index = None
            if isinstance(first, torch.Tensor):
                if id(first) not in tensor_index:
                    tensor_index[id(first)] = len(alive)
                    alive.append(first)
                index = tensor_index[id(first)]
                if name in wanted:
                    trace.inputs[name] = first.detach()
            trace.calls.append((name, index))

        handles.append(module.register_forward_pre_hook(record))
    was_training = model.training
    try:
        if eval_mode:
            model.eval()
        if inputs is None:
            param = next(model.parameters())
            inputs = torch.randn(*input_shape, device=param.device,
                                 dtype=param.dtype)
        with torch.no_grad():
            getattr(model, '_forward', model)(inputs)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return trace


def execution_order(trace: ModelTrace, kinds: tuple = (nn.Conv2d, )
                    ) -> List[str]:
    """Modules of ``kinds`` in the order they ran, each at its last call.

    Args:
        trace: The model's trace.
        kinds: Module classes to keep.

    Returns:
        Names, first executed first.
    """
    order: Dict[str, None] = {}
    for name, _ in trace.calls:
        if issubclass(trace.types[name], kinds):
            order.pop(name, None)
            order[name] = None
    return list(order)


def shared_input_groups(trace: ModelTrace,
                        names: Sequence[str]) -> List[List[str]]:
    """Groups of the named modules that read one and the same tensor.

    Args:
        trace: The model's trace.
        names: Module names to consider.

    Returns:
        Groups of two or more names in call order (e.g. DeepLabV3's four
        ASPP branches).
    """
    wanted = set(names)
    readers: Dict[int, List[str]] = {}
    for name, index in trace.calls:
        if name in wanted and index is not None:
            group = readers.setdefault(index, [])
            if name not in group:
                group.append(name)
    return [group for group in readers.values() if len(group) > 1]


def modules_after(trace: ModelTrace, first: Sequence[str],
                  kinds: tuple) -> List[str]:
    """Modules of ``kinds`` that run once any of ``first`` has run.

    Args:
        trace: The model's trace.
        first: Module names; the earliest of them to run starts the region
            (and is part of it when it is of ``kinds``).
        kinds: Module classes to collect.

    Returns:
        Names in execution order (first call inside the region); empty
        when none of ``first`` ran.
    """
    starts = set(first)
    found: Dict[str, None] = {}
    started = False
    for name, _ in trace.calls:
        started = started or name in starts
        if started and issubclass(trace.types[name], kinds):
            found.setdefault(name, None)
    return list(found)
