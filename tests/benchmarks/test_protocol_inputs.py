"""``--from-protocol`` at any size: the protocol's calibrated checkpoint and
target images drawn at that size, through the fine-tuning pipeline."""
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import pytest
import torch
from mmseg.registry import MODELS

from benchmarks.protocol_inputs import raw_batch, target_batch, target_root
from mmseg_hosvd.datasets.synthetic_shapes import (
    GENERATOR_VERSION,
    TARGET_CLASSES,
    generate,
    read_stamp,
)
from mmseg_hosvd.protocol.matrix import config_path, final_checkpoint

from ..helpers import CONFIGS, ROOT, TINY_SIZES, model_config

#: The tiny protocol dataset's image side and seed.
DATA_SIZE, DATA_SEED = 64, 3
#: The size the benchmark is asked for.
SIZE = 96
CACHE = osp.join('work_dirs', 'benchmark_inputs', f'synthetic_shapes-{SIZE}px')


@pytest.fixture
def protocol_dir(tmp_path, monkeypatch):
    """A working directory laid out as the protocol leaves it: the configs,
    a generated dataset of 64 px images and FCN's calibrated checkpoint
    (the config's initial weights, its classifier set to 0.25)."""
    os.symlink(CONFIGS, tmp_path / 'configs')
    generate(str(tmp_path / 'data' / 'synthetic_shapes'), TINY_SIZES,
             image_size=DATA_SIZE, seed=DATA_SEED)
    monkeypatch.chdir(tmp_path)
    state = MODELS.build(model_config('fcn').model).state_dict()
    for name in state:
        if name.startswith('decode_head.conv_seg.'):
            state[name] = torch.full_like(state[name], 0.25)
    checkpoint = final_checkpoint(config_path('fcn', 'calib'))
    os.makedirs(osp.dirname(checkpoint))
    torch.save(dict(state_dict=state), checkpoint)
    return tmp_path


def test_target_images_are_drawn_at_the_size_asked(protocol_dir):
    inputs, labels = target_batch('fcn', 2, SIZE)
    assert inputs.shape == (2, 3, SIZE, SIZE) and inputs.dtype == torch.float32
    assert labels.shape == (2, SIZE, SIZE)
    assert set(labels.unique().tolist()) <= set(range(len(TARGET_CLASSES))) | {
        255}
    assert (labels > 0).any() and (labels < 255).any()
    # the generator drew the target domain at 96 px with the protocol's seed
    assert read_stamp(CACHE) == dict(
        version=GENERATOR_VERSION, image_size=SIZE, seed=DATA_SEED,
        sizes=dict(source={}, target=dict(train=8)))
    data = raw_batch('fcn', True, 2, SIZE)
    for sample in data['data_samples']:
        path = sample.metainfo['seg_map_path']
        assert osp.dirname(path) == osp.join(CACHE, 'target', 'ann_dir',
                                             'train')
        assert cv2.imread(path, cv2.IMREAD_UNCHANGED).shape == (SIZE, SIZE)
    assert all(max(x.shape[-2:]) <= SIZE for x in data['inputs'])


def test_the_protocol_size_reads_the_protocol_dataset(protocol_dir):
    inputs, labels = target_batch('fcn', 2, DATA_SIZE)
    assert inputs.shape == (2, 3, DATA_SIZE, DATA_SIZE)
    data = raw_batch('fcn', True, 1, DATA_SIZE, start=1)
    assert data['data_samples'][0].metainfo['seg_map_path'] == osp.join(
        'data', 'synthetic_shapes', 'target', 'ann_dir', 'train',
        '00001.png')
    assert not osp.exists('work_dirs/benchmark_inputs')


def test_the_cache_is_reused_while_its_stamp_matches(protocol_dir):
    data_root = 'data/synthetic_shapes/target'
    assert target_root(data_root, SIZE, 4) == osp.join(CACHE, 'target')
    stamp = osp.join(CACHE, 'generated.json')
    os.utime(stamp, (1e9, 1e9))
    target_root(data_root, SIZE, 3)
    assert osp.getmtime(stamp) == 1e9
    assert read_stamp(CACHE)['sizes']['target'] == dict(train=4)
    # more images than it holds: drawn again
    target_root(data_root, SIZE, 6)
    assert read_stamp(CACHE)['sizes']['target'] == dict(train=6)
    # another seed: drawn again
    generate(CACHE, {'target': {'train': 6}}, image_size=SIZE, seed=0)
    target_root(data_root, SIZE, 6)
    assert read_stamp(CACHE)['seed'] == DATA_SEED


def test_peak_memory_from_protocol_at_another_size(protocol_dir):
    """The whole-step benchmark runs from the calibrated checkpoint on
    target images drawn at 96 px from a 64 px protocol dataset."""
    path = protocol_dir / 'peak.json'
    result = subprocess.run(
        [sys.executable, osp.join(ROOT, 'benchmarks', 'peak_memory.py'),
         '--models', 'fcn', '--methods', 'vanilla', 'hosvd', '--reductions',
         'prefix1-chunkloss1-mb1', '--size', str(SIZE), '--batch', '2',
         '--steps', '1', '--from-protocol', '--json', str(path)],
        cwd=protocol_dir, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert 'the target pipeline gives' not in result.stderr
    records = json.loads(path.read_text())
    assert [(r['method'], r['size'], r['micro_batch'], r['from_protocol'])
            for r in records] == [('vanilla', SIZE, 1, True),
                                  ('hosvd', SIZE, 1, True)]
    assert all(r['peak_increment_mb'] > 0 for r in records)


def test_gradient_error_from_protocol(protocol_dir):
    """The gradient-error benchmark on the calibrated checkpoint and target
    images: every fine-tuned layer and candidate (with the batch mode kept
    too, storing at least as much), exact at full rank, an allocation
    within uniform eps 0.8's bytes, and the step it compares its cost
    with."""
    # the fixture's constant classifier passes no gradient upstream (every
    # class scores alike), so the calibrated checkpoint gets a random one
    torch.manual_seed(0)
    state = MODELS.build(model_config('fcn').model).state_dict()
    torch.save(dict(state_dict=state),
               final_checkpoint(config_path('fcn', 'calib')))
    path = protocol_dir / 'errors.json'
    result = subprocess.run(
        [sys.executable, osp.join(ROOT, 'benchmarks', 'gradient_error.py'),
         '--model', 'fcn', '--from-protocol', '--size', str(DATA_SIZE),
         '--batch', '2', '--batches', '2', '--eps', '0.5', '1.0', '--bits',
         '8', '--keep-batch', '--json', str(path)],
        cwd=protocol_dir, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    record = json.loads(path.read_text())
    layers = list(dict.fromkeys(e['layer'] for e in record['errors']))
    assert len(layers) == 5 and record['weights'] == 'trained'
    assert [(e['layer'], e['tag']) for e in record['errors']] == [
        (layer, tag) for layer in layers
        for tag in ('hosvd-eps0.5', 'hosvd-eps0.8', 'hosvd-eps1',
                    'hosvd-eps0.5-keepbatch', 'hosvd-eps0.8-keepbatch',
                    'hosvd-eps1-keepbatch', 'qact8')]
    by_tag = {(e['layer'], e['tag']): e for e in record['errors']}
    for layer in layers:
        assert by_tag[layer, 'hosvd-eps1']['error'] < 1e-4
        assert by_tag[layer, 'hosvd-eps1-keepbatch']['error'] < 1e-4
        assert by_tag[layer, 'hosvd-eps0.5']['error'] > 1e-4
        for eps in ('0.5', '0.8'):
            kept = by_tag[layer, f'hosvd-eps{eps}-keepbatch']
            assert kept['stored_bytes'] >= by_tag[layer, f'hosvd-eps{eps}'][
                'stored_bytes']
    allocation, reference = record['allocation'], record['reference']
    assert list(allocation['choices']) == layers
    assert allocation['stored_bytes'] <= reference['stored_bytes']
    assert allocation['error'] <= reference['error'] + 1e-12
    assert record['step_s'] > 0 and record['capture_s'] > 0
    assert 'training steps of' in result.stdout


def test_gradient_error_of_spatial_eps_pairs_by_the_whole_gradient(
        protocol_dir):
    """With ``--spatial-eps`` each eps is also measured with each other
    spatial eps (the batch mode kept with ``--keep-batch``); with
    ``--criterion whole`` the allocation minimises the whole gradient's
    error, which then is at most uniform eps 0.8's."""
    torch.manual_seed(0)
    state = MODELS.build(model_config('fcn').model).state_dict()
    torch.save(dict(state_dict=state),
               final_checkpoint(config_path('fcn', 'calib')))
    path = protocol_dir / 'pairs.json'
    result = subprocess.run(
        [sys.executable, osp.join(ROOT, 'benchmarks', 'gradient_error.py'),
         '--model', 'fcn', '--from-protocol', '--size', str(DATA_SIZE),
         '--batch', '2', '--batches', '1', '--eps', '0.5', '--bits',
         '--keep-batch', '--spatial-eps', '0.5', '1.0', '--criterion',
         'whole', '--unshared', '--json', str(path)],
        cwd=protocol_dir, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    record = json.loads(path.read_text())
    layers = list(dict.fromkeys(e['layer'] for e in record['errors']))
    assert [(e['layer'], e['tag']) for e in record['errors']] == [
        (layer, tag) for layer in layers
        for tag in ('hosvd-eps0.5', 'hosvd-eps0.8', 'hosvd-eps0.5-keepbatch',
                    'hosvd-eps0.8-keepbatch', 'hosvd-eps0.5-keepbatch-'
                    'spatial1', 'hosvd-eps0.8-keepbatch-spatial0.5',
                    'hosvd-eps0.8-keepbatch-spatial1')]
    by_tag = {(e['layer'], e['tag']): e for e in record['errors']}
    for layer in layers:
        kept = by_tag[layer, 'hosvd-eps0.5-keepbatch']
        wider = by_tag[layer, 'hosvd-eps0.5-keepbatch-spatial1']
        assert wider['stored_bytes'] > kept['stored_bytes']
    allocation, reference = record['allocation'], record['reference']
    assert allocation['criterion'] == 'whole'
    assert allocation['stored_bytes'] <= reference['stored_bytes']
    assert 0 < allocation['whole_error'] <= reference['whole_error'] + 1e-12
    assert 'allocation (criterion whole)' in result.stdout
    # the baseline measured every candidate on its own, to the same records
    assert record['unshared_s'] > 0
    assert 'candidates on their own, nothing shared' in result.stdout
