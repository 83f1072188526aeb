"""The generated dataset: deterministic, in mmseg's format, loadable."""
import hashlib
import os

import numpy as np
import pytest
from mmseg.registry import DATASETS

from mmseg_hosvd.datasets import CLASSES, PALETTE, generate, render


def digest(root):
    h = hashlib.sha256()
    for folder, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            with open(os.path.join(folder, name), 'rb') as f:
                h.update(f.read())
    return h.hexdigest()


SIZES = {'source': {'train': 3, 'val': 1}, 'target': {'train': 2, 'val': 1}}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    generate(str(tmp_path / 'a'), SIZES, 32, seed=5)
    generate(str(tmp_path / 'b'), SIZES, 32, seed=5)
    generate(str(tmp_path / 'c'), SIZES, 32, seed=6)
    assert digest(tmp_path / 'a') == digest(tmp_path / 'b')
    assert digest(tmp_path / 'a') != digest(tmp_path / 'c')


def test_domains_differ_and_labels_are_valid():
    source = [render(np.random.default_rng(i), 64, 'source')
              for i in range(20)]
    target = [render(np.random.default_rng(i), 64, 'target')
              for i in range(20)]
    for image, label in source + target:
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        assert set(np.unique(label)) <= set(range(len(CLASSES)))
    labels = np.concatenate([lab.ravel() for _, lab in source])
    assert len(np.unique(labels)) == len(CLASSES)
    mean_s = np.mean([img.std() for img, _ in source])
    mean_t = np.mean([img.std() for img, _ in target])
    assert mean_t > mean_s  # the target is noisier and textured


def test_each_class_keeps_its_colour_in_the_target():
    def class_colours(domain):
        pixels = {c: [] for c in range(1, len(CLASSES))}
        for i in range(40):
            image, label = render(np.random.default_rng(i), 64, domain)
            for c in pixels:
                pixels[c].append(image[label == c].astype(np.float64))
        return {c: np.median(np.concatenate(p), axis=0)
                for c, p in pixels.items()}

    source, target = class_colours('source'), class_colours('target')
    for c in source:
        nearest = min(source,
                      key=lambda s: np.abs(source[s] - target[c]).sum())
        assert nearest == c, (CLASSES[c], source, target)


def test_dataset_class_loads_the_generated_folders(tiny_data):
    dataset = DATASETS.build(
        dict(type='SyntheticShapesDataset',
             data_root=os.path.join(tiny_data, 'target'),
             data_prefix=dict(img_path='img_dir/train',
                              seg_map_path='ann_dir/train'),
             pipeline=[]))
    assert len(dataset) == 8
    assert dataset.metainfo['classes'] == CLASSES
    assert [list(p) for p in dataset.metainfo['palette']] == PALETTE


def test_bad_sizes_are_rejected(tmp_path):
    with pytest.raises(ValueError, match='image_size must be >= 16, got 8'):
        generate(str(tmp_path), SIZES, 8)
    with pytest.raises(ValueError, match='source/train must be >= 0, got -1'):
        generate(str(tmp_path), {'source': {'train': -1}}, 32)
