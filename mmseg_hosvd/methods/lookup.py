"""Finding methods and naming their settings, for every reader."""
from typing import Any, Dict, List

from .base import FinetuneMethod
from .registry import FINETUNE_METHODS

#: Options the lean region reads too (its HOSVD forms' solver, warm start
#: and default threshold), accepted with ``lean=True`` whatever the method.
LEAN_OPTIONS = ('eps', 'solver', 'warm_start')


def method_names() -> List[str]:
    """Registered method names, in table order."""
    return [m.name for m in all_methods()]


def _instance(key: str, cls: type) -> FinetuneMethod:
    """The method registered as ``key``, named by its registry key."""
    method = cls()
    if method.name and method.name != key:
        raise ValueError(f'{cls.__name__} is registered as {key!r} but its '
                         f'name is {method.name!r}; register it under its '
                         'name, or leave name unset')
    method.name = key
    return method


def all_methods() -> List[FinetuneMethod]:
    """One instance of every registered method, in table order."""
    methods = [_instance(key, cls)
               for key, cls in FINETUNE_METHODS.module_dict.items()]
    return sorted(methods, key=lambda m: m.order)


def get_method(name: str) -> FinetuneMethod:
    """The method registered as ``name``.

    Raises:
        ValueError: Naming the bad method and the known ones.
    """
    cls = FINETUNE_METHODS.module_dict.get(name) if isinstance(
        name, str) else None
    if cls is None:
        raise ValueError(f'unknown method {name!r}; choose one of '
                         f'{sorted(FINETUNE_METHODS.module_dict)}')
    return _instance(name, cls)


def split_options(method: FinetuneMethod, given: Dict[str, Any],
                  lean: bool) -> Dict[str, Any]:
    """Checks which options ``method`` (and the lean region) accepts.

    Args:
        method: The method.
        given: The options a config gave.
        lean: Whether the lean region is on.

    Returns:
        The method's options, defaults filled in and checked.

    Raises:
        ValueError: For an option that neither the method nor the lean
            region takes, naming the methods that take it.
    """
    for key, value in given.items():
        if key in method.options or (lean and key in LEAN_OPTIONS):
            continue
        takers = tuple(m.name for m in all_methods() if key in m.options)
        lean_too = key in LEAN_OPTIONS
        if len(takers) == 1 and not lean_too:
            raise ValueError(f'{key} needs method={takers[0]!r}, got '
                             f'method={method.name!r}')
        if takers:
            raise ValueError(
                f'{key}={value!r} applies to the methods {takers}' +
                (' and to the lean region' if lean_too else '') +
                f', got method={method.name!r}' +
                (' without lean' if lean_too else ''))
        raise ValueError(f'unknown option {key!r} for method '
                         f'{method.name!r}; it takes '
                         f'{sorted(method.options)}' +
                         (f' (and {list(LEAN_OPTIONS)} with lean=True)'
                          if not lean else ''))
    return method.check_options(
        {k: v for k, v in given.items() if k in method.options})


def accepted_options(method: str, candidates: Dict[str, Any],
                     lean: bool = False) -> Dict[str, Any]:
    """The candidates that ``method`` (or, with ``lean``, its lean region)
    takes, for callers that set one option for many methods (benchmarks).
    """
    spec = get_method(method)
    return {
        k: v
        for k, v in candidates.items()
        if k in spec.options or (lean and k in LEAN_OPTIONS)
    }


def setting_tag(method: str, options: Dict[str, Any],
                lean: bool = False) -> str:
    """The config-name tag of a method setting (e.g. 'hosvd-eps0.8-lean').

    Args:
        method: Method name.
        options: Its options as given (defaults are filled in).
        lean: Whether the lean region is on.
    """
    spec = get_method(method)
    checked = spec.check_options(
        {k: v for k, v in options.items() if k in spec.options})
    return spec.tag(checked) + ('-lean' if lean else '')

