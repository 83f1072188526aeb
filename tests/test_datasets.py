"""The generated dataset: deterministic, in mmseg's format, loadable."""
import hashlib
import os

import numpy as np
import pytest
from mmseg.registry import DATASETS

from mmseg_hosvd.datasets import (
    CLASSES,
    PALETTE,
    TARGET_CLASSES,
    TARGET_PALETTE,
    generate,
    render,
)

from .helpers import TINY_SIZES


def digest(root):
    h = hashlib.sha256()
    for folder, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            with open(os.path.join(folder, name), 'rb') as f:
                h.update(f.read())
    return h.hexdigest()


#: sha256 of generator version 2's first source image and label at 128 px.
SOURCE_DIGEST = (
    'b5274692d19f6150477e0a35c376a79269e89a54c693170ba34db61bbf3df729')
SIZES = {'source': {'train': 3, 'val': 1}, 'target': {'train': 2, 'val': 1}}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    generate(str(tmp_path / 'a'), SIZES, 32, seed=5)
    generate(str(tmp_path / 'b'), SIZES, 32, seed=5)
    generate(str(tmp_path / 'c'), SIZES, 32, seed=6)
    assert digest(tmp_path / 'a') == digest(tmp_path / 'b')
    assert digest(tmp_path / 'a') != digest(tmp_path / 'c')


def labels_of(domain, count=40, size=64):
    return [render(np.random.default_rng(i), size, domain)
            for i in range(count)]


def test_domains_differ_and_labels_are_valid():
    source, target = labels_of('source', 20), labels_of('target', 20)
    for (image, label), classes in ([(s, CLASSES) for s in source] +
                                    [(t, TARGET_CLASSES) for t in target]):
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        assert set(np.unique(label)) <= set(range(len(classes)))
    for drawn, classes in ((source, CLASSES), (target, TARGET_CLASSES)):
        labels = np.concatenate([lab.ravel() for _, lab in drawn])
        assert len(np.unique(labels)) == len(classes)
    mean_s = np.mean([img.std() for img, _ in source])
    mean_t = np.mean([img.std() for img, _ in target])
    assert mean_t > mean_s  # the target is noisier and textured


def test_about_half_of_the_target_objects_are_of_new_classes():
    objects = {'old': 0, 'new': 0}
    for _, label in labels_of('target', 200, 128):
        for cls in np.unique(label)[1:]:
            objects['new' if cls >= len(CLASSES) else 'old'] += 1
    share = objects['new'] / (objects['new'] + objects['old'])
    assert 0.4 < share < 0.6, objects


def median_colours(domain, classes):
    pixels = {c: [] for c in range(1, len(classes))}
    for image, label in labels_of(domain):
        for c in pixels:
            pixels[c].append(image[label == c].astype(np.float64))
    return {c: np.median(np.concatenate(p), axis=0)
            for c, p in pixels.items()}


def test_source_classes_keep_their_colour_and_new_ones_have_new_colours():
    source = median_colours('source', CLASSES)
    target = median_colours('target', TARGET_CLASSES)
    for c, colour in target.items():
        distance = {s: np.abs(source[s] - colour).sum() for s in source}
        nearest = min(distance, key=distance.get)
        if c < len(CLASSES):
            assert nearest == c, (TARGET_CLASSES[c], source, target)
        else:
            assert distance[nearest] > 100, (TARGET_CLASSES[c], source,
                                             target)


def test_the_source_domain_is_what_generator_version_2_drew():
    """Version 3 changed only the target: source checkpoints stay valid."""
    image, label = render(np.random.default_rng([0, 0, 0, 0]), 128, 'source')
    assert hashlib.sha256(image.tobytes() + label.tobytes()).hexdigest() == (
        SOURCE_DIGEST)


@pytest.mark.parametrize('kind, domain, classes, palette', [
    ('SyntheticShapesDataset', 'source', CLASSES, PALETTE),
    ('SyntheticShapesTargetDataset', 'target', TARGET_CLASSES,
     TARGET_PALETTE),
])
def test_dataset_classes_load_the_generated_folders(tiny_data, kind, domain,
                                                     classes, palette):
    dataset = DATASETS.build(
        dict(type=kind,
             data_root=os.path.join(tiny_data, domain),
             data_prefix=dict(img_path='img_dir/train',
                              seg_map_path='ann_dir/train'),
             pipeline=[]))
    assert len(dataset) == TINY_SIZES[domain]['train']
    assert dataset.metainfo['classes'] == classes
    assert [list(p) for p in dataset.metainfo['palette']] == palette


def test_bad_sizes_are_rejected(tmp_path):
    with pytest.raises(ValueError, match='image_size must be >= 16, got 8'):
        generate(str(tmp_path), SIZES, 8)
    with pytest.raises(ValueError, match='source/train must be >= 0, got -1'):
        generate(str(tmp_path), {'source': {'train': -1}}, 32)
