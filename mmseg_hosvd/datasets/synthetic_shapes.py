"""A deterministic two-domain segmentation dataset that nobody downloads.

The images and their classes are drawn by :mod:`.shape_drawing`: a
*source* domain for pretraining with five classes, and a *target* domain for
calibration and fine-tuning with other textures, noise and scales and three
new classes in new colours. (Generator version 1 changed every class colour
in the target; version 2 kept the source's five classes and colours, so that
fine-tuning gained little over calibrating the classifier.) Labels are
written in mmseg's folder format, with a stamp of the generator version and
arguments written last::

    <root>/<domain>/img_dir/{train,val}/00000.png
    <root>/<domain>/ann_dir/{train,val}/00000.png
    <root>/generated.json
"""
import json
import os
import os.path as osp
from typing import Callable, Dict, Optional

import cv2
import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .shape_drawing import (
    SOURCE_CLASSES,
    TARGET_CLASSES,
    TARGET_PALETTE,
    render,
)

#: The source domain's classes and display colours.
CLASSES = SOURCE_CLASSES
PALETTE = TARGET_PALETTE[:len(SOURCE_CLASSES)]
DOMAINS = ('source', 'target')
#: Default number of images per domain and split.
DEFAULT_SIZES = {
    'source': {
        'train': 600,
        'val': 100
    },
    'target': {
        'train': 300,
        'val': 100
    }
}

#: Changes whenever the same arguments would generate other images.
GENERATOR_VERSION = 3
#: The stamp file, relative to the dataset root.
STAMP_NAME = 'generated.json'


@DATASETS.register_module()
class SyntheticShapesDataset(BaseSegDataset):
    """The generated shapes dataset, source domain (see module docstring).

    Args:
        **kwargs: As for mmseg's ``BaseSegDataset``; images and maps are PNG.
    """

    METAINFO = dict(classes=CLASSES, palette=PALETTE)

    def __init__(self, **kwargs):
        kwargs.setdefault('img_suffix', '.png')
        kwargs.setdefault('seg_map_suffix', '.png')
        kwargs.setdefault('reduce_zero_label', False)
        super().__init__(**kwargs)

    def load_data_list(self) -> list:
        """mmseg's file listing, refusing a directory without images.

        Returns:
            The samples.

        Raises:
            FileNotFoundError: Naming the image directory when it lists
                none (MMEngine would fail later with "need at least one
                array to concatenate").
        """
        samples = super().load_data_list()
        if not samples:
            raise FileNotFoundError(
                f'image directory {self.data_prefix.get("img_path")!r} of '
                f'{type(self).__name__} holds no images (files ending in '
                f'{self.img_suffix!r}); generate it with: python '
                'tools/generate_dataset.py')
        return samples


@DATASETS.register_module()
class SyntheticShapesTargetDataset(SyntheticShapesDataset):
    """The generated shapes dataset, target domain: the source's five
    classes and three new ones (:data:`TARGET_CLASSES`).

    Args:
        **kwargs: As for :class:`SyntheticShapesDataset`.
    """

    METAINFO = dict(classes=TARGET_CLASSES, palette=TARGET_PALETTE)


def generate(root: str,
             sizes: Optional[Dict[str, Dict[str, int]]] = None,
             image_size: int = 128,
             seed: int = 0,
             progress: Optional[Callable[[int], None]] = None) -> int:
    """Writes the dataset under ``root`` in mmseg's folder format.

    The same ``seed`` and sizes give byte-identical files. The stamp
    (:func:`generation_stamp`) is removed first and written last, so that
    an interrupted generation is not taken for a finished one; images a
    previous, larger generation left in a split are removed.

    Args:
        root: Output folder.
        sizes: Images per domain and split, as :data:`DEFAULT_SIZES`.
        image_size: Side of the square images.
        seed: Random seed.
        progress: Called with 1 after each image written.

    Returns:
        The number of images written.

    Raises:
        ValueError: For an unknown domain or split, or a size below 1.
    """
    sizes = DEFAULT_SIZES if sizes is None else sizes
    if image_size < 16:
        raise ValueError(f'image_size must be >= 16, got {image_size}')
    stamp_path = osp.join(root, STAMP_NAME)
    if osp.exists(stamp_path):
        os.remove(stamp_path)
    written = 0
    for d_index, domain in enumerate(DOMAINS):
        for s_index, split in enumerate(('train', 'val')):
            count = sizes.get(domain, {}).get(split, 0)
            if count < 0:
                raise ValueError(f'size of {domain}/{split} must be >= 0, '
                                 f'got {count}')
            img_dir = osp.join(root, domain, 'img_dir', split)
            ann_dir = osp.join(root, domain, 'ann_dir', split)
            os.makedirs(img_dir, exist_ok=True)
            os.makedirs(ann_dir, exist_ok=True)
            for index in range(count):
                rng = np.random.default_rng(
                    [seed, d_index, s_index, index])
                image, label = render(rng, image_size, domain)
                name = f'{index:05d}.png'
                cv2.imwrite(osp.join(img_dir, name), image[..., ::-1])
                cv2.imwrite(osp.join(ann_dir, name), label)
                written += 1
                if progress is not None:
                    progress(1)
            _remove_from(count, img_dir, ann_dir)
    with open(stamp_path, 'w') as f:
        json.dump(generation_stamp(sizes, image_size, seed), f, indent=1)
    return written


def generation_stamp(sizes: Dict[str, Dict[str, int]], image_size: int,
                     seed: int) -> dict:
    """What :func:`generate` writes to ``<root>/generated.json``: the
    generator version and the arguments that decide the images."""
    return dict(version=GENERATOR_VERSION, image_size=image_size, seed=seed,
                sizes={d: dict(sizes.get(d, {})) for d in DOMAINS})


def read_stamp(root: str) -> Optional[dict]:
    """The stamp of the dataset generated under ``root``, or None when
    there is none (not generated, interrupted, or by a generator before
    version 2)."""
    try:
        with open(osp.join(root, STAMP_NAME)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _remove_from(first: int, *folders: str) -> None:
    for folder in folders:
        index = first
        while osp.isfile(osp.join(folder, f'{index:05d}.png')):
            os.remove(osp.join(folder, f'{index:05d}.png'))
            index += 1
