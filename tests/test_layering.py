"""The package's wings import only down: no module imports one of a higher
layer (see docs/design.md), and few modules sit loose at the package root.

Every import is checked, lazy ones inside functions and ``TYPE_CHECKING``
ones included, as the source spells it (``ast``, nothing is imported).
"""
import ast
import os
import os.path as osp

from .helpers import ROOT

PACKAGE = 'mmseg_hosvd'
PACKAGE_DIR = osp.join(ROOT, PACKAGE)
#: The layer of each wing (a sub-package or a module at the package root),
#: lowest first. A module may import its own layer and the ones below.
LAYERS = {
    'ops': 1,
    'utils': 1,
    'checkpoints': 1,
    'layers': 2,
    'datasets': 2,
    'compat': 2,
    'selection': 3,
    'reductions': 4,
    'methods': 4,
    'engine': 5,
    'protocol': 5,
    'planning': 5,
    # the re-export of the public layer and selection names for users
    'models': 5,
}
#: The package itself (its ``__init__``) imports every wing.
TOP = 6
#: Most modules a wing-less package root may hold, ``__init__`` included.
MAX_ROOT_MODULES = 6


def package_modules():
    """(dotted name, path, is a package's __init__) of every module."""
    for folder, dirs, files in os.walk(PACKAGE_DIR):
        dirs[:] = sorted(d for d in dirs if d != '__pycache__')
        for name in sorted(files):
            if not name.endswith('.py'):
                continue
            path = osp.join(folder, name)
            parts = osp.relpath(path, ROOT)[:-3].split(os.sep)
            is_init = parts[-1] == '__init__'
            if is_init:
                parts = parts[:-1]
            yield '.'.join(parts), path, is_init


def imported_modules(tree, module, is_init):
    """(line, dotted name) of each mmseg_hosvd module an AST imports.

    ``from X import name`` yields ``X.name`` (the name may be a module);
    relative imports are resolved against ``module``.
    """
    package = module if is_init else module.rpartition('.')[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split('.')
                base = parts[:len(parts) - node.level + 1]
                if node.module:
                    base.append(node.module)
                source = '.'.join(base)
            else:
                source = node.module
            for alias in node.names:
                yield node.lineno, f'{source}.{alias.name}'


def layer_of(dotted):
    """The layer of a dotted mmseg_hosvd name, or None outside the package.

    The package itself (``import mmseg_hosvd``) is :data:`TOP`.
    """
    parts = dotted.split('.')
    if parts[0] != PACKAGE:
        return None
    if len(parts) == 1 or parts[1] not in LAYERS:
        # the package, or a name its __init__ defines
        return TOP
    return LAYERS[parts[1]]


def test_every_wing_has_a_layer():
    wings = {
        name[:-3] if name.endswith('.py') else name
        for name in os.listdir(PACKAGE_DIR)
        if name != '__pycache__' and name != '__init__.py'
    }
    assert wings <= set(LAYERS), sorted(wings - set(LAYERS))


def test_imports_only_point_down():
    upward = []
    for module, path, is_init in package_modules():
        if module == PACKAGE:
            continue
        own = layer_of(module)
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), path)
        for line, target in imported_modules(tree, module, is_init):
            layer = layer_of(target)
            if layer is not None and layer > own:
                upward.append(f'{osp.relpath(path, ROOT)}:{line}: {module} '
                              f'(layer {own}) imports {target} '
                              f'(layer {layer})')
    assert not upward, 'imports that run upward:\n' + '\n'.join(upward)


def test_checker_sees_an_upward_import():
    """The check itself: relative, absolute and lazy imports all count."""
    source = ('from ..selection.surgery import convert_convs_\n'
              'def f():\n'
              '    from mmseg_hosvd.engine import hooks\n'
              'from . import warm_start\n')
    found = sorted(
        imported_modules(ast.parse(source), 'mmseg_hosvd.ops.tucker', False))
    assert found == [(1, 'mmseg_hosvd.selection.surgery.convert_convs_'),
                     (3, 'mmseg_hosvd.engine.hooks'),
                     (4, 'mmseg_hosvd.ops.warm_start')]
    assert [layer_of(t) for _, t in found] == [3, 5, 1]
    assert layer_of('mmseg_hosvd') == TOP
    assert layer_of('torch.nn') is None


def test_few_modules_sit_at_the_package_root():
    loose = sorted(name for name in os.listdir(PACKAGE_DIR)
                   if name.endswith('.py'))
    assert len(loose) <= MAX_ROOT_MODULES, loose
