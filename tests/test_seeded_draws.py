"""Samples seeded by their draw number: the same draw, the same crop."""
import random

import numpy as np
import pytest
import torch
from mmengine.dataset import DefaultSampler

from mmseg_hosvd.datasets import Draw, DrawSampler, SeededDrawDataset

from .helpers import tiny_runner_config


def random_dataset(tiny_data, tmp_path):
    """The target's training set with the protocol's random augmentation."""
    cfg = tiny_runner_config('fcn', str(tmp_path), tiny_data)
    return SeededDrawDataset(cfg.train_dataloader.dataset, seed=233)


def image(sample):
    return sample['inputs']


def global_states():
    return (random.getstate(), np.random.get_state()[1].tolist(),
            torch.get_rng_state())


def test_a_draw_is_augmented_the_same_whatever_ran_before(
        tiny_data, tmp_path):
    dataset = random_dataset(tiny_data, tmp_path)
    first = image(dataset[Draw(0, 5, 1)])
    np.random.seed(1)
    random.seed(1)
    torch.manual_seed(1)
    before = global_states()
    again = image(dataset[Draw(0, 5, 1)])
    assert torch.equal(first, again)
    # the caller's generators are left where they were
    after = global_states()
    assert before[:2] == after[:2] and torch.equal(before[2], after[2])
    # another draw of the same image, or another rank, is cropped otherwise
    assert not torch.equal(first, image(dataset[Draw(0, 6, 1)]))
    assert not torch.equal(first, image(dataset[Draw(1, 5, 1)]))


def test_draws_are_numbered_across_epochs(tiny_data, tmp_path):
    dataset = random_dataset(tiny_data, tmp_path)
    sampler = DrawSampler(
        dict(type='DefaultSampler', shuffle=True), dataset, seed=3)
    reference = DefaultSampler(dataset, shuffle=True, seed=3)
    assert len(sampler) == len(reference) == 8
    first = list(sampler)
    sampler.set_epoch(1)
    reference.set_epoch(1)
    second = list(sampler)
    assert [d.number for d in first + second] == list(range(16))
    assert [d.index for d in second] == list(reference)
    assert [d.index for d in second] != [d.index for d in first]


def test_bad_draws_and_seeds_are_refused(tiny_data, tmp_path):
    dataset = random_dataset(tiny_data, tmp_path)
    with pytest.raises(TypeError, match=r'Draws of a DrawSampler, got 3;'):
        dataset[3]
    with pytest.raises(ValueError, match='non-negative integer, got -1'):
        SeededDrawDataset(dataset.dataset, seed=-1)
