"""Datasets registered in mmseg's DATASETS."""
from .synthetic_shapes import (
                               CLASSES,
                               DEFAULT_SIZES,
                               DOMAINS,
                               PALETTE,
                               SyntheticShapesDataset,
                               generate,
                               render,
)

__all__ = [
    'CLASSES', 'DEFAULT_SIZES', 'DOMAINS', 'PALETTE', 'SyntheticShapesDataset',
    'generate', 'render'
]
