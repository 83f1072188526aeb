"""The installed start-up hook: mmseg works however it is imported, and
Python without mm* imports pays nothing for it (fresh interpreters of this
environment, run outside the repository)."""
import importlib.machinery
import os
import os.path as osp
import shutil
import subprocess
import sys
import textwrap
import zipfile

import pytest

from mmseg_hosvd import compat

from .helpers import ROOT


def run_python(code, cwd, **env):
    """Runs ``code`` in a fresh interpreter; returns its stdout's words."""
    result = subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                            cwd=cwd,
                            env=dict(os.environ, **env),
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.split()


def test_hook_is_installed_and_imports_nothing_heavy(tmp_path):
    out = run_python("""
        import json, sys
        hooks = [type(f).__name__ for f in sys.meta_path]
        print('CompatImportHook' in hooks, 'torch' in sys.modules,
              'numpy' in sys.modules, 'mmseg_hosvd' in sys.modules)
    """, tmp_path)
    assert out == ['True', 'False', 'False', 'False']


@pytest.mark.skipif(compat.has_compiled_mmcv_ops(),
                    reason='a full mmcv is installed: the hook stays idle')
def test_mmseg_imported_first_works(tmp_path):
    out = run_python("""
        import mmseg
        from mmseg.models import EncoderDecoder
        from mmseg.registry import MODELS
        from mmengine.runner import CheckpointLoader
        import sys
        print(MODELS.get('EncoderDecoder') is EncoderDecoder,
              CheckpointLoader._schemes[''].__module__,
              'mmseg_hosvd' in sys.modules)
    """, tmp_path)
    assert out == ['True', 'mmseg_hosvd.checkpoints.loading', 'False']


def test_full_mmcv_keeps_the_hook_idle(tmp_path):
    """An mmcv with its compiled extension on disk: nothing is applied."""
    package = tmp_path / 'full' / 'mmcv'
    package.mkdir(parents=True)
    (package / '__init__.py').write_text('')
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    (package / f'_ext{suffix}').write_bytes(b'')
    out = run_python("""
        import sys
        import mmcv
        print(mmcv.__file__, 'torch' in sys.modules)
        import mmengine
        print('mmseg_hosvd.compat' in sys.modules)
    """, tmp_path, PYTHONPATH=str(tmp_path / 'full'))
    assert out == [str(package / '__init__.py'), 'False', 'False']


def test_wheel_ships_the_hook_at_the_site_packages_root(tmp_path):
    """``pip install .`` (a wheel) installs the .pth like ``-e`` does."""
    source = tmp_path / 'source'
    shutil.copytree(osp.join(ROOT, 'mmseg_hosvd'), source / 'mmseg_hosvd',
                    ignore=shutil.ignore_patterns('__pycache__'))
    for name in ('setup.py', 'README.md', 'mmseg_hosvd_startup.py'):
        shutil.copy(osp.join(ROOT, name), source)
    subprocess.run([
        sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
        '--no-build-isolation', '--no-index', '-w',
        str(tmp_path / 'dist'), str(source)
    ],
                   check=True,
                   capture_output=True,
                   timeout=300)
    wheel, = (tmp_path / 'dist').iterdir()
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        line = archive.read('mmseg_hosvd_startup.pth').decode()
    assert 'mmseg_hosvd_startup.py' in names
    assert line.startswith('import mmseg_hosvd_startup;')
