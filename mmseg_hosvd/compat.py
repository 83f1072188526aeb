"""Makes MMSegmentation 1.2 importable and usable on a plain CPU install.

Three incompatibilities are handled here, each explicitly and only when it
applies:

* **mmcv-lite has no compiled ops.** mmseg imports ``mmcv.ops`` at import
  time, which loads the compiled extension ``mmcv._ext``. When that extension
  is missing, a stand-in module is registered whose every op raises a
  :class:`MissingCompiledOpError` naming the op when called. A full mmcv
  (``mmcv._ext`` importable) is used untouched.
* **setuptools >= 82 has no pkg_resources**, which mmengine 0.10 uses to find
  installed packages (``mmseg::`` config paths). When it is missing, those
  mmengine helpers are replaced with ``importlib.metadata`` equivalents.
* **torch >= 2.6 loads with weights_only=True**, which MMEngine's own
  checkpoints fail (they pickle the MessageHub state and numpy scalars). The
  local-file and ``http(s)://`` checkpoint loaders are re-registered to load
  with ``weights_only=True`` plus an allowlist of exactly what MMEngine and
  mmseg checkpoints hold; anything else is refused unless trusted
  explicitly (see :mod:`mmseg_hosvd.checkpoints.loading`).

:func:`apply` runs on ``import mmseg_hosvd``, before mmseg is imported, and,
with mmcv-lite, on the first import of mmcv, mmengine or mmseg (the start-up
hook ``mmseg_hosvd_startup``), however mmseg is imported. This module,
:mod:`mmseg_hosvd.checkpoints.loading`, :mod:`mmseg_hosvd.checkpoints.trust`
and their package import nothing else from mmseg_hosvd: the hook loads them
without the ``mmseg_hosvd`` package.
"""
import importlib.machinery
import importlib.metadata
import importlib.util
import os.path as osp
import sys
import types

import torch

from mmseg_hosvd.checkpoints.loading import (
    load_local_checkpoint,
    load_url_checkpoint,
)

MMCV_EXT = 'mmcv._ext'


class MissingCompiledOpError(RuntimeError):
    """Raised when a compiled mmcv op is called on an mmcv without ops."""


class _MissingCompiledOps(types.ModuleType):
    """Stand-in for ``mmcv._ext`` whose ops raise a clear error when called."""

    def __getattr__(self, name):
        if name.startswith('__'):
            raise AttributeError(name)

        def missing_op(*args, **kwargs):
            raise MissingCompiledOpError(
                f"mmcv op '{name}' needs mmcv's compiled extension, which "
                'this mmcv (mmcv-lite) does not have. Install the full mmcv '
                "('pip install mmcv==2.1.0', built from source) to use it.")

        missing_op.__name__ = name
        return missing_op


def has_compiled_mmcv_ops() -> bool:
    """Whether a full mmcv with compiled ops is installed."""
    if isinstance(sys.modules.get(MMCV_EXT), _MissingCompiledOps):
        return False
    try:
        return importlib.util.find_spec(MMCV_EXT) is not None
    except (ModuleNotFoundError, ValueError):
        return MMCV_EXT in sys.modules


def stub_missing_mmcv_ops() -> bool:
    """Registers the ``mmcv._ext`` stand-in if mmcv has no compiled ops.

    Returns:
        True if the stand-in is in place, False if a full mmcv is used.
    """
    if has_compiled_mmcv_ops():
        return False
    if MMCV_EXT not in sys.modules:
        stub = _MissingCompiledOps(MMCV_EXT)
        # A spec without a loader: importlib finds the module, while
        # mmengine's and mmcv's "is the full mmcv here?" checks (which look
        # for a loader) still answer no.
        stub.__spec__ = importlib.machinery.ModuleSpec(MMCV_EXT, None)
        sys.modules[MMCV_EXT] = stub
    return True


class _Distribution:
    """The part of ``pkg_resources.Distribution`` that mmengine reads."""

    def __init__(self, dist: importlib.metadata.Distribution):
        self._dist = dist
        self.location = str(dist.locate_file(''))

    def has_metadata(self, name: str) -> bool:
        return self._dist.read_text(name) is not None

    def get_metadata(self, name: str) -> str:
        return self._dist.read_text(name) or ''


def _get_distribution(package: str) -> _Distribution:
    return _Distribution(importlib.metadata.distribution(package))


def _module_origin(package: str):
    spec = importlib.util.find_spec(package)
    return None if spec is None else spec.origin


def is_installed(package: str) -> bool:
    """``mmengine.utils.is_installed`` without pkg_resources."""
    try:
        importlib.metadata.distribution(package)
        return True
    except importlib.metadata.PackageNotFoundError:
        return _module_origin(package) is not None


def get_installed_path(package: str) -> str:
    """``mmengine.utils.get_installed_path`` without pkg_resources."""
    try:
        dist = _get_distribution(package)
    except importlib.metadata.PackageNotFoundError:
        origin = _module_origin(package)
        if origin is None:
            raise
        return osp.dirname(origin)
    possible = osp.join(dist.location, package)
    if osp.exists(possible):
        return possible
    top_level = dist.get_metadata('top_level.txt').split('\n')[0]
    if not top_level:
        raise ValueError(f'can not infer the module name of {package}')
    return osp.join(dist.location, top_level)


def has_pkg_resources() -> bool:
    """Whether setuptools' pkg_resources can be imported."""
    return importlib.util.find_spec('pkg_resources') is not None


def patch_pkg_resources_users() -> bool:
    """Points mmengine's package helpers at importlib.metadata if needed.

    Returns:
        True if mmengine was patched, False if pkg_resources exists.
    """
    if has_pkg_resources():
        return False
    import mmengine.config.config as config_module
    import mmengine.utils as utils
    import mmengine.utils.package_utils as package_utils
    for module in (package_utils, utils, config_module):
        module.is_installed = is_installed
        module.get_installed_path = get_installed_path
    return True


def torch_loads_weights_only_by_default() -> bool:
    """Whether ``torch.load`` defaults to ``weights_only=True`` here."""
    major, minor = (int(v) for v in torch.__version__.split('.')[:2])
    return (major, minor) >= (2, 6)


def register_checkpoint_loader() -> bool:
    """Makes MMEngine load its checkpoints safely on torch >= 2.6.

    Local files and ``http(s)://`` URLs load with the allowlist of
    :mod:`mmseg_hosvd.checkpoints.loading`.

    Returns:
        True if the loaders were replaced.
    """
    if not torch_loads_weights_only_by_default():
        return False
    from mmengine.runner import CheckpointLoader
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_local_checkpoint, force=True)
    CheckpointLoader.register_scheme(
        prefixes=('http://', 'https://'),
        loader=load_url_checkpoint,
        force=True)
    return True


def apply() -> dict:
    """Applies every fix that this environment needs.

    Returns:
        Which fixes were applied, by name.
    """
    return {
        'mmcv_ops_stub': stub_missing_mmcv_ops(),
        'pkg_resources': patch_pkg_resources_users(),
        'checkpoint_loader': register_checkpoint_loader(),
    }
