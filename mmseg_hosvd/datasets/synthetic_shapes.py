"""A deterministic two-domain segmentation dataset that nobody downloads.

Images show discs, boxes, triangles and rings on a background. The *source*
domain (for pretraining) has flat, saturated objects on smooth backgrounds;
the *target* domain (for fine-tuning) keeps each class's colour (as road and
sky keep theirs between two driving datasets) but adds stripe and checker
textures, textured backgrounds, stronger noise, blur and other object scales,
so that a model pretrained on the source loses accuracy there and
fine-tuning has something to recover. (Generator version 1 also changed
every class colour in the target: a network trained on the source could
then transfer only if its residual branches stayed nearly dead, see
README.) Labels are written in mmseg's folder format, with a stamp of the
generator version and arguments written last::

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

CLASSES = ('background', 'disc', 'box', 'triangle', 'ring')
PALETTE = [[0, 0, 0], [220, 60, 60], [60, 180, 75], [70, 110, 230],
           [240, 200, 40]]
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
GENERATOR_VERSION = 2
#: The stamp file, relative to the dataset root.
STAMP_NAME = 'generated.json'
# Object colours (RGB) per class, in both domains.
_COLOURS = np.array([[200, 50, 50], [50, 170, 70], [60, 90, 210],
                     [230, 190, 40]], np.float32)
_SCALES = {'source': (14, 30), 'target': (9, 38)}
_NOISE = {'source': 6.0, 'target': 18.0}


@DATASETS.register_module()
class SyntheticShapesDataset(BaseSegDataset):
    """The generated two-domain shapes dataset (see module docstring).

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
                'SyntheticShapesDataset holds no images (files ending in '
                f'{self.img_suffix!r}); generate it with: python '
                'tools/generate_dataset.py')
        return samples


def _background(rng, size, domain):
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = rng.uniform(60, 150, 3).astype(np.float32)
    tilt = rng.uniform(-50, 50, (2, 3)).astype(np.float32)
    image = base + yy[..., None] * tilt[0] + xx[..., None] * tilt[1]
    if domain == 'target':
        blobs = rng.normal(0, 1, (size // 8, size // 8, 3)).astype(np.float32)
        image += 25 * cv2.resize(blobs, (size, size),
                                 interpolation=cv2.INTER_CUBIC)
    return image


def _shape_mask(rng, size, cls, scale):
    mask = np.zeros((size, size), np.uint8)
    cx, cy = rng.integers(0, size, 2)
    r = int(scale)
    if cls == 1:
        cv2.circle(mask, (int(cx), int(cy)), r, 1, -1)
    elif cls == 2:
        angle = float(rng.uniform(0, 180))
        dims = (float(2 * r), float(2 * r * rng.uniform(0.5, 1.0)))
        box = cv2.boxPoints(((float(cx), float(cy)), dims, angle))
        cv2.fillPoly(mask, [box.astype(np.int32)], 1)
    elif cls == 3:
        angles = rng.uniform(0, 2 * np.pi) + np.array([0, 2, 4]) * np.pi / 3
        pts = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], 1)
        cv2.fillPoly(mask, [pts.astype(np.int32)], 1)
    else:
        cv2.circle(mask, (int(cx), int(cy)), r, 1, max(3, r // 3))
    return mask.astype(bool)


def _texture(rng, size, domain):
    if domain == 'source':
        return np.ones((size, size, 1), np.float32)
    yy, xx = np.mgrid[0:size, 0:size]
    period = int(rng.integers(4, 9))
    if rng.random() < 0.5:
        pattern = ((yy + xx) // period) % 2
    else:
        pattern = ((yy // period) + (xx // period)) % 2
    return (0.7 + 0.5 * pattern[..., None]).astype(np.float32)


def render(rng: np.random.Generator, size: int, domain: str):
    """Draws one image and its label map.

    Args:
        rng: Random generator (the only source of randomness).
        size: Side of the square image in pixels.
        domain: 'source' or 'target'.

    Returns:
        ``(image, label)``: uint8 RGB (size, size, 3) and uint8 (size, size).
    """
    image = _background(rng, size, domain)
    label = np.zeros((size, size), np.uint8)
    low, high = _SCALES[domain]
    for _ in range(int(rng.integers(2, 6))):
        cls = int(rng.integers(1, len(CLASSES)))
        mask = _shape_mask(rng, size, cls, rng.uniform(low, high) * size / 128)
        colour = _COLOURS[cls - 1] + rng.normal(0, 12, 3)
        image[mask] = (colour * _texture(rng, size, domain))[mask]
        label[mask] = cls
    image += rng.normal(0, _NOISE[domain], image.shape)
    if domain == 'target':
        image = cv2.GaussianBlur(image, (3, 3), 0.8)
    return np.clip(image, 0, 255).astype(np.uint8), label


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
