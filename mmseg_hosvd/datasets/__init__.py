"""Datasets registered in mmseg's DATASETS, and the sampler that numbers
training draws."""
from .seeded_draws import Draw, DrawSampler, SeededDrawDataset
from .synthetic_shapes import (
                               CLASSES,
                               DEFAULT_SIZES,
                               DOMAINS,
                               PALETTE,
                               TARGET_CLASSES,
                               TARGET_PALETTE,
                               SyntheticShapesDataset,
                               SyntheticShapesTargetDataset,
                               generate,
                               render,
)

__all__ = [
    'CLASSES', 'DEFAULT_SIZES', 'DOMAINS', 'Draw', 'DrawSampler', 'PALETTE',
    'SeededDrawDataset', 'SyntheticShapesDataset',
    'SyntheticShapesTargetDataset', 'TARGET_CLASSES', 'TARGET_PALETTE',
    'generate', 'render'
]
