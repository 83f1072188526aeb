"""In-place model surgery: swap convolutions, freeze, fix norm statistics."""
from typing import Callable, Dict, Iterable, List

from torch import nn
from torch.nn.modules.batchnorm import _NormBase


def set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    """Replaces the submodule at dotted ``name``, wherever the model refers
    to it.

    A module registered under two names runs wherever it is referenced:
    mmseg's ``MixFFN`` holds its activation as ``activate`` and as
    ``layers.2``, and ``named_modules`` lists only the first. Every
    reference to the replaced module object is swapped, except inside
    ``module`` itself (a wrapper keeps the module it wraps).

    Args:
        model: The model, modified in place.
        name: Dotted name of the module to replace.
        module: Its replacement.
    """
    old = model.get_submodule(name)
    parent_name, _, child = name.rpartition('.')
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)
    inside = {id(m) for m in module.modules()}
    for owner in list(model.modules()):
        if id(owner) in inside:
            continue
        for key, value in owner._modules.items():
            if value is old:
                owner._modules[key] = module


def has_module(model: nn.Module, name: str) -> bool:
    """Whether ``model`` has a submodule at dotted ``name``."""
    try:
        model.get_submodule(name)
        return True
    except AttributeError:
        return False


def convert_convs_(model: nn.Module, names: Iterable[str],
                   factory: Callable[[str, nn.Conv2d], nn.Module]
                   ) -> Dict[str, nn.Module]:
    """Swaps the named convolutions in place for ``factory(name, conv)``.

    Args:
        model: The model, modified in place.
        names: Dotted names of ``nn.Conv2d`` modules.
        factory: Builds the replacement; it should reuse the Parameters.

    Returns:
        The new modules by name.
    """
    new = {}
    for name in names:
        conv = model.get_submodule(name)
        new[name] = factory(name, conv)
        set_submodule(model, name, new[name])
    return new


def freeze_except_(model: nn.Module, trainable: Iterable[str]) -> List[str]:
    """Sets ``requires_grad`` False on every parameter outside ``trainable``.

    Args:
        model: The model, modified in place.
        trainable: Dotted module names whose parameters stay trainable.

    Returns:
        Names of the trainable parameters.
    """
    prefixes = tuple(n + '.' for n in trainable)
    kept = []
    for name, param in model.named_parameters():
        keep = name.startswith(prefixes)
        param.requires_grad_(keep)
        if keep:
            kept.append(name)
    return kept


def set_norm_eval_(model: nn.Module) -> int:
    """Puts every BatchNorm-style layer in eval mode (frozen statistics).

    Returns:
        The number of norm layers set to eval.
    """
    count = 0
    for module in model.modules():
        if isinstance(module, _NormBase):
            module.eval()
            count += 1
    return count
