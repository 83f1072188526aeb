"""Drawing one image of the generated shapes dataset and its label map.

The *source* domain shows discs, boxes, triangles and rings, flat and
saturated, on smooth backgrounds. The *target* domain keeps those four
classes and their colours, adds stripe and checker textures, textured
backgrounds, stronger noise, blur and other object scales, and adds three
classes the source never shows, each in a colour the source never shows:
crosses (purple), stars (cyan) and hexagonal frames (white). Half of the
target's objects are of the new classes. A network pretrained on the source
has neither the classes nor the colours, so its classifier and its last
layers must learn new semantics on the target, as when a model pretrained on
Cityscapes is fine-tuned on Pascal VOC.
"""
from typing import Tuple

import cv2
import numpy as np

#: The source domain's classes (pretraining).
SOURCE_CLASSES = ('background', 'disc', 'box', 'triangle', 'ring')
#: The target domain's classes (calibration and fine-tuning): the source's,
#: then three new ones.
TARGET_CLASSES = SOURCE_CLASSES + ('cross', 'star', 'hex_frame')
#: Display colours (RGB) per target class; the source's are the first five.
TARGET_PALETTE = [[0, 0, 0], [220, 60, 60], [60, 180, 75], [70, 110, 230],
                  [240, 200, 40], [150, 60, 200], [40, 180, 190],
                  [235, 235, 235]]
#: Share of the target's objects drawn from the new classes.
NEW_CLASS_SHARE = 0.5
# Object colours (RGB) per class but background, in both domains.
_COLOURS = np.array([[200, 50, 50], [50, 170, 70], [60, 90, 210],
                     [230, 190, 40], [150, 60, 200], [40, 180, 190],
                     [235, 235, 235]], np.float32)
_SCALES = {'source': (14, 30), 'target': (9, 38)}
_NOISE = {'source': 6.0, 'target': 18.0}
_FIRST_NEW = len(SOURCE_CLASSES)


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


def _source_shape(mask, rng, cls, cx, cy, r):
    if cls == 1:
        cv2.circle(mask, (cx, cy), r, 1, -1)
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
        cv2.circle(mask, (cx, cy), r, 1, max(3, r // 3))


def _polygon(cx, cy, radii, angles):
    return np.stack([cx + radii * np.cos(angles),
                     cy + radii * np.sin(angles)], 1).astype(np.int32)


def _new_shape(mask, rng, cls, cx, cy, r):
    angle = float(rng.uniform(0, np.pi))
    if cls == _FIRST_NEW:
        width = float(max(2, int(r * 0.45)))
        for arm in (angle, angle + np.pi / 2):
            bar = cv2.boxPoints(((float(cx), float(cy)), (float(2 * r), width),
                                 float(np.degrees(arm))))
            cv2.fillPoly(mask, [bar.astype(np.int32)], 1)
    elif cls == _FIRST_NEW + 1:
        points = np.arange(10)
        radii = np.where(points % 2 == 0, r, r * 0.45)
        angles = angle + points * np.pi / 5
        cv2.fillPoly(mask, [_polygon(cx, cy, radii, angles)], 1)
    else:
        corners = angle + np.arange(6) * np.pi / 3
        cv2.fillPoly(mask, [_polygon(cx, cy, r, corners)], 1)
        cv2.fillPoly(mask, [_polygon(cx, cy, 0.5 * r, corners)], 0)


def _shape_mask(rng, size, cls, scale):
    mask = np.zeros((size, size), np.uint8)
    cx, cy = (int(c) for c in rng.integers(0, size, 2))
    draw = _source_shape if cls < _FIRST_NEW else _new_shape
    draw(mask, rng, cls, cx, cy, int(scale))
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


def _object_class(rng, domain):
    if domain == 'target' and rng.random() < NEW_CLASS_SHARE:
        return int(rng.integers(_FIRST_NEW, len(TARGET_CLASSES)))
    return int(rng.integers(1, _FIRST_NEW))


def render(rng: np.random.Generator, size: int,
           domain: str) -> Tuple[np.ndarray, np.ndarray]:
    """Draws one image and its label map.

    Args:
        rng: Random generator (the only source of randomness).
        size: Side of the square image in pixels.
        domain: 'source' or 'target'.

    Returns:
        ``(image, label)``: uint8 RGB (size, size, 3) and uint8 (size, size)
        with the domain's class indices (:data:`SOURCE_CLASSES` or
        :data:`TARGET_CLASSES`).
    """
    image = _background(rng, size, domain)
    label = np.zeros((size, size), np.uint8)
    low, high = _SCALES[domain]
    for _ in range(int(rng.integers(2, 6))):
        cls = _object_class(rng, domain)
        mask = _shape_mask(rng, size, cls, rng.uniform(low, high) * size / 128)
        colour = _COLOURS[cls - 1] + rng.normal(0, 12, 3)
        image[mask] = (colour * _texture(rng, size, domain))[mask]
        label[mask] = cls
    image += rng.normal(0, _NOISE[domain], image.shape)
    if domain == 'target':
        image = cv2.GaussianBlur(image, (3, 3), 0.8)
    return np.clip(image, 0, 255).astype(np.uint8), label
