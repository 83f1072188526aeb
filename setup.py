"""Install mmseg_hosvd: ``pip install -c constraints.txt -e .[test]``.

mmcv is required as mmcv-lite by default (no compiled ops, installs in
seconds; ``import mmseg_hosvd`` makes mmseg work with it). To keep or build a
full mmcv instead, set ``MMSEG_HOSVD_MMCV=full`` when installing.

Both ``pip install .`` and ``pip install -e .`` also put
``mmseg_hosvd_startup.pth`` in site-packages: it installs the import hook of
``mmseg_hosvd_startup.py``, which applies the compatibility fixes when mmcv
lacks its compiled ops, however mmseg is imported. A wheel gets it from
``build_py`` (written at the root of the build dir); an editable wheel, which
holds no build output, from its editable strategy.
"""
import os

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

MMCV_RANGE = '>=2.0.0rc4,<2.2.0'


def mmcv_requirement() -> str:
    """mmcv-lite by default, the full mmcv when MMSEG_HOSVD_MMCV=full."""
    choice = os.environ.get('MMSEG_HOSVD_MMCV', 'lite')
    if choice not in ('lite', 'full'):
        raise ValueError(
            f"MMSEG_HOSVD_MMCV must be 'lite' or 'full', got {choice!r}")
    return ('mmcv-lite' if choice == 'lite' else 'mmcv') + MMCV_RANGE


STARTUP_PTH = 'mmseg_hosvd_startup.pth'
# after the editable finder's __editable__.*.pth (site reads them sorted)
STARTUP_LINE = 'import mmseg_hosvd_startup; mmseg_hosvd_startup.install()\n'


class BuildPyWithStartupHook(build_py):
    """build_py that also writes the start-up .pth for a wheel."""

    def run(self):
        super().run()
        if not getattr(self, 'editable_mode', False):
            with open(os.path.join(self.build_lib, STARTUP_PTH), 'w') as f:
                f.write(STARTUP_LINE)


class _StrategyWithStartupHook:
    """An editable strategy that also writes the start-up .pth."""

    def __init__(self, strategy):
        self.strategy = strategy

    def __call__(self, wheel, files, mapping):
        self.strategy(wheel, files, mapping)
        wheel.writestr(STARTUP_PTH, STARTUP_LINE.encode())

    def __enter__(self):
        self.strategy.__enter__()
        return self

    def __exit__(self, *exc_info):
        return self.strategy.__exit__(*exc_info)


class EditableWheelWithStartupHook(editable_wheel):
    """editable_wheel that also ships the start-up .pth.

    An editable wheel holds no build output, and setuptools has no public
    way to add a file at its root; ``_select_strategy`` is the step that
    writes its other files (setuptools 64 to 81 alike).
    """

    def _select_strategy(self, *args, **kwargs):
        return _StrategyWithStartupHook(
            super()._select_strategy(*args, **kwargs))


setup(
    name='mmseg_hosvd',
    version='0.1.0',
    description=('Memory-lean fine-tuning of MMSegmentation models with '
                 'HOSVD / SVD activation compression and Gradient Filter'),
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmseg_hosvd', 'mmseg_hosvd.*']),
    py_modules=['mmseg_hosvd_startup'],
    cmdclass={
        'build_py': BuildPyWithStartupHook,
        'editable_wheel': EditableWheelWithStartupHook,
    },
    python_requires='>=3.9',
    install_requires=[
        'torch>=2.0',
        'numpy',
        'mmengine>=0.10.0,<0.11',
        mmcv_requirement(),
        'mmsegmentation==1.2.2',
        # imported by mmseg at import time, not declared by it
        'ftfy',
        'regex',
        'matplotlib',
        'prettytable',
        'scipy',
        'opencv-python',
    ],
    extras_require={
        # tensorly: the tensor algebra is tested against TensorLy's
        'test': ['pytest', 'pytest-xdist', 'hypothesis', 'ruff', 'tensorly'],
    },
    license='Apache-2.0',
)
