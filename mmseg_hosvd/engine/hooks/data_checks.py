"""What the data checks look for: label ids the model does not know, in
datasets and batches, and how they are reported."""
from typing import List, Tuple

import numpy as np
import torch
from torch import nn

from .unwrap import unwrap_model

#: How many label maps an error lists by name.
_LISTED = 5


class DataCheckError(ValueError):
    """A data file the run cannot use: an image or label map that does not
    load, or a label map holding ids that are no class of the model."""


def leaf_datasets(dataset) -> list:
    """The datasets inside ConcatDataset- and RepeatDataset-style wrappers
    (``.datasets`` / ``.dataset``), or ``[dataset]``."""
    if hasattr(dataset, 'datasets'):
        return [leaf for sub in dataset.datasets for leaf in
                leaf_datasets(sub)]
    if hasattr(dataset, 'dataset'):
        return leaf_datasets(dataset.dataset)
    return [dataset]


def sample_indices(length: int, size: int) -> List[int]:
    """Every index when ``length <= size``, else ``size`` evenly spaced ones
    (the first and the last among them)."""
    if length <= size:
        return list(range(length))
    return sorted(set(np.linspace(0, length - 1, size).round().astype(int)
                      .tolist()))


def label_range(model: nn.Module, dataset) -> Tuple[int, int]:
    """``(num_classes, ignore_index)`` of the model's (last) decode head, or
    of the dataset where the model has none.

    Args:
        model: The model, possibly in a data-parallel wrapper.
        dataset: A dataset with ``metainfo['classes']``.
    """
    head = getattr(unwrap_model(model), 'decode_head', None)
    if isinstance(head, nn.ModuleList):
        head = head[-1]
    leaf = leaf_datasets(dataset)[0]
    num_classes = getattr(head, 'num_classes', None)
    if num_classes is None:
        num_classes = len(leaf.metainfo['classes'])
    ignore_index = getattr(head, 'ignore_index', None)
    if ignore_index is None:
        ignore_index = getattr(leaf, 'ignore_index', 255)
    return num_classes, ignore_index


def unknown_mask(labels: torch.Tensor, num_classes: int,
                 ignore_index: int) -> torch.Tensor:
    """Where ``labels`` is neither a class ``0..num_classes - 1`` nor the
    ignore index."""
    return ((labels < 0) | (labels >= num_classes)) & (labels != ignore_index)


def describe_unknown_labels(where: str, found: List[Tuple[str, list]],
                            num_classes: int, ignore_index: int) -> str:
    """Names label maps that hold unknown ids, and the ids.

    Args:
        where: When they were met, e.g. 'at training iteration 3'.
        found: ``(label map path, unknown ids)`` pairs.
        num_classes: The model's classes.
        ignore_index: The model's ignore index.
    """
    listed = '; '.join(f'{path} holds {ids}' for path, ids in found[:_LISTED])
    more = (f' (and {len(found) - _LISTED} more label maps)'
            if len(found) > _LISTED else '')
    return (f'{where}: label ids that are neither a class (0..'
            f'{num_classes - 1}) nor the ignore index {ignore_index}: '
            f'{listed}{more}.')


#: How to fix unknown label ids, after :func:`describe_unknown_labels`.
FIX_UNKNOWN_LABELS = (
    ' Fix these label maps (or the dataset\'s classes / reduce_zero_label, '
    "or the model's num_classes), or set "
    "default_hooks.data_check.unknown_labels='ignore' to train and evaluate "
    'those pixels as ignored.')
