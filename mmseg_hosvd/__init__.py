"""mmseg_hosvd: memory-lean fine-tuning of MMSegmentation models.

Importing the package makes MMSegmentation usable on a CPU-only install
(see :mod:`mmseg_hosvd.compat`), has MMEngine format a config's text once
per process (:mod:`mmseg_hosvd.utils.config_text`), and registers the
compressed convolutions, hooks and datasets in mmseg's registries, and the
fine-tuning methods in :data:`mmseg_hosvd.methods.FINETUNE_METHODS`.
Configs load it with ``custom_imports = dict(imports=['mmseg_hosvd'])``.
"""
# checkpoints too: the start-up hook may have loaded it (and its modules)
# without the package, which then binds it here
from . import checkpoints, compat  # noqa: F401

COMPAT_FIXES = compat.apply()

from . import datasets, engine, methods, models  # noqa: E402,F401
from .utils.config_text import cache_config_formatting  # noqa: E402

cache_config_formatting()

from .models import Conv2dGradFilter, Conv2dHOSVD, Conv2dSVD  # noqa: E402

__version__ = '0.1.0'

__all__ = ['Conv2dGradFilter', 'Conv2dHOSVD', 'Conv2dSVD', '__version__']
