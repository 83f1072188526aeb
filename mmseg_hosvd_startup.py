"""Applies mmseg_hosvd's compatibility fixes however mmseg is imported.

Installed with ``mmseg_hosvd_startup.pth`` in site-packages (``pip install``
and ``pip install -e`` alike, see ``setup.py``), which runs :func:`install`
at every interpreter start. That only puts :class:`CompatImportHook` at the
front of ``sys.meta_path`` and imports nothing else.

On the first import of mmcv, mmengine or mmseg the hook checks, on disk and
without importing mmcv, whether mmcv's compiled ops are there. With a full
mmcv (or once ``mmseg_hosvd.compat`` is loaded, which applies the fixes
itself) it does nothing from then on. With mmcv-lite it lets that first
module import as usual and then runs :func:`mmseg_hosvd.compat.apply`, so
``import mmseg`` followed by ``mmseg.models`` works without importing
mmseg_hosvd first.

Only the compat modules are loaded, without the ``mmseg_hosvd`` package:
plain mmseg use does not register mmseg_hosvd's modules.
"""
import sys

#: The imports that need the fixes first.
TRIGGERS = frozenset(('mmcv', 'mmengine', 'mmseg'))
#: mmseg_hosvd's compat modules (and the package holding two of them) in
#: import order, relative to mmseg_hosvd; they import nothing else from
#: mmseg_hosvd, so they load without the package.
COMPAT_MODULES = ('checkpoints', 'checkpoints.trust', 'checkpoints.loading',
                  'compat')
_COMPAT = 'mmseg_hosvd.compat'
_state = {'done': False}


class CompatImportHook:
    """Meta-path finder that applies the fixes after the first trigger."""

    def find_spec(self, fullname, path=None, target=None):
        """Wraps the loader of the first trigger import, when needed."""
        if _state['done'] or fullname not in TRIGGERS:
            return None
        if not fixes_needed(self):
            _state['done'] = True
            return None
        spec = _find_spec_elsewhere(self, fullname, path, target)
        if spec is not None and hasattr(spec.loader, 'exec_module'):
            spec.loader = _FixesAfterLoading(spec.loader)
        return spec


class _FixesAfterLoading:
    """Runs a module's own loader, then the fixes."""

    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        apply_fixes()


def _find_spec_elsewhere(hook, fullname, path=None, target=None):
    """The spec the other meta-path finders give ``fullname``."""
    for finder in sys.meta_path:
        find_spec = getattr(finder, 'find_spec', None)
        if finder is hook or find_spec is None:
            continue
        spec = find_spec(fullname, path, target)
        if spec is not None:
            return spec
    return None


def fixes_needed(hook=None) -> bool:
    """Whether mmcv is installed without its compiled ops (mmcv-lite).

    False as well once ``mmseg_hosvd.compat`` is loaded (it applies the fixes
    itself) or when mmcv is not installed. Nothing is imported.
    """
    if _COMPAT in sys.modules or 'mmcv._ext' in sys.modules:
        return False
    mmcv = _find_spec_elsewhere(hook, 'mmcv')
    if mmcv is None or not mmcv.submodule_search_locations:
        return False
    from importlib.machinery import PathFinder
    return PathFinder.find_spec(
        'mmcv._ext', list(mmcv.submodule_search_locations)) is None


def _load_without_package(name: str):
    """Loads ``mmseg_hosvd.<name>`` from its file, without the package.

    ``name`` is dotted below mmseg_hosvd (``'checkpoints.loading'``); a
    sub-package loads from its ``__init__.py``. A module whose parent
    sub-package is loaded is bound on it, as an import would.
    """
    import importlib.util
    import os.path as osp
    fullname = f'mmseg_hosvd.{name}'
    if fullname in sys.modules:
        return sys.modules[fullname]
    package = importlib.util.find_spec('mmseg_hosvd')
    path = osp.join(package.submodule_search_locations[0], *name.split('.'))
    if osp.isdir(path):
        spec = importlib.util.spec_from_file_location(
            fullname,
            osp.join(path, '__init__.py'),
            submodule_search_locations=[path])
    else:
        spec = importlib.util.spec_from_file_location(fullname, path + '.py')
    module = importlib.util.module_from_spec(spec)
    sys.modules[fullname] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[fullname]
        raise
    parent, _, child = fullname.rpartition('.')
    if parent in sys.modules:
        setattr(sys.modules[parent], child, module)
    return module


def apply_fixes() -> None:
    """Runs :func:`mmseg_hosvd.compat.apply` once, unless already loaded."""
    if _state['done']:
        return
    _state['done'] = True
    if _COMPAT in sys.modules:
        return
    for name in COMPAT_MODULES:
        _load_without_package(name)
    sys.modules[_COMPAT].apply()


def install() -> None:
    """Puts the hook at the front of ``sys.meta_path`` (once)."""
    if not any(isinstance(f, CompatImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, CompatImportHook())
