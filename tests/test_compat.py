"""mmseg on a CPU-only install: mmcv-lite, pkg_resources, checkpoints."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.runner import load_checkpoint, save_checkpoint
from torch import nn

from mmseg_hosvd import compat


def run_python(code):
    """Runs ``code`` in a fresh interpreter and returns its stdout."""
    result = subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_mmseg_imports_and_builds_models():
    out = run_python("""
        import mmseg_hosvd
        import mmseg.models, mmseg.datasets, mmseg.apis, mmseg.evaluation
        from mmseg.registry import MODELS
        print(MODELS.get('EncoderDecoder').__name__)
    """)
    assert out.strip() == 'EncoderDecoder'


@pytest.mark.skipif(compat.has_compiled_mmcv_ops(),
                    reason='a full mmcv is installed: its ops are real')
def test_missing_compiled_op_raises_naming_the_op():
    import mmcv.ops
    with pytest.raises(compat.MissingCompiledOpError, match="'nms'"):
        mmcv.ops.nms(torch.zeros(1, 4), torch.zeros(1), 0.5)


def test_full_mmcv_is_used_untouched():
    """A compiled mmcv._ext (stood in for by a module with every op) stays."""
    out = run_python("""
        import importlib.machinery, sys, types

        class CompiledOps(types.ModuleType):
            def __getattr__(self, name):
                if name.startswith('__'):
                    raise AttributeError(name)
                return lambda *args, **kwargs: name

        ext = CompiledOps('mmcv._ext')
        ext.__spec__ = importlib.machinery.ModuleSpec(
            'mmcv._ext', importlib.machinery.BuiltinImporter)
        sys.modules['mmcv._ext'] = ext
        import mmseg_hosvd
        import mmcv.ops
        print(mmseg_hosvd.COMPAT_FIXES['mmcv_ops_stub'],
              sys.modules['mmcv._ext'] is ext)
    """)
    assert out.split() == ['False', 'True']


def test_without_pkg_resources_mmengine_finds_packages():
    out = run_python("""
        import sys
        sys.modules['pkg_resources'] = None  # as with setuptools >= 82
        import mmseg_hosvd
        from mmengine.utils import get_installed_path, is_installed
        import mmengine.config.config as config
        print(mmseg_hosvd.COMPAT_FIXES['pkg_resources'])
        print(is_installed('mmsegmentation'), is_installed('no_such_pkg_x'))
        print(config.get_installed_path('mmsegmentation'))
    """)
    flag, installed, path = out.strip().split('\n')
    assert flag == 'True'
    assert installed == 'True False'
    assert os.path.isdir(os.path.join(path, 'configs')) or os.path.isdir(path)


def test_checkpoint_round_trip_through_mmengine(tmp_path):
    """MMEngine checkpoints pickle MessageHub state and numpy scalars."""
    model = nn.Conv2d(3, 4, 3)
    hub = MessageHub.get_instance('compat_test')
    hub.update_scalar('train/loss', 0.5)
    hub.update_info('iter', np.int64(3))
    path = str(tmp_path / 'ckpt.pth')
    checkpoint = {
        'state_dict': model.state_dict(),
        'meta': {
            'message_hub': hub.state_dict(),
            'seed': np.int64(233),
            'loss': np.float32(0.5)
        }
    }
    save_checkpoint(checkpoint, path)
    other = nn.Conv2d(3, 4, 3)
    loaded = load_checkpoint(other, path, map_location='cpu')
    assert torch.equal(other.weight, model.weight)
    assert loaded['meta']['seed'] == 233
    restored = MessageHub.get_instance('compat_test_restored')
    restored.load_state_dict(loaded['meta']['message_hub'])
    assert restored.get_scalar('train/loss').current() == 0.5


@pytest.mark.skipif(compat.has_compiled_mmcv_ops(),
                    reason='a full mmcv is installed: it is available')
def test_mmengine_sees_no_full_mmcv_with_the_stand_in():
    from mmengine.utils.dl_utils import mmcv_full_available
    assert mmcv_full_available() is False
