"""Install mmseg_hosvd: ``pip install -c constraints.txt -e .[test]``.

mmcv is required as mmcv-lite by default (no compiled ops, installs in
seconds; ``import mmseg_hosvd`` makes mmseg work with it). To keep or build a
full mmcv instead, set ``MMSEG_HOSVD_MMCV=full`` when installing.
"""
import os

from setuptools import find_packages, setup

MMCV_RANGE = '>=2.0.0rc4,<2.2.0'


def mmcv_requirement() -> str:
    """mmcv-lite by default, the full mmcv when MMSEG_HOSVD_MMCV=full."""
    choice = os.environ.get('MMSEG_HOSVD_MMCV', 'lite')
    if choice not in ('lite', 'full'):
        raise ValueError(
            f"MMSEG_HOSVD_MMCV must be 'lite' or 'full', got {choice!r}")
    return ('mmcv-lite' if choice == 'lite' else 'mmcv') + MMCV_RANGE


setup(
    name='mmseg_hosvd',
    version='0.1.0',
    description=('Memory-lean fine-tuning of MMSegmentation models with '
                 'HOSVD / SVD activation compression and Gradient Filter'),
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmseg_hosvd', 'mmseg_hosvd.*']),
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
