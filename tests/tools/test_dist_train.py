"""Two real processes (torchrun, gloo) fine-tune with HOSVD in lockstep,
then test together."""
import json
import os
import subprocess
import sys

import torch

from ..helpers import ROOT, tiny_runner_config


def test_two_processes_end_with_identical_weights(tiny_data, tmp_path):
    hooks = [
        dict(type='CompressConvHook', method='hosvd', eps=0.8, num_layers=5),
        dict(type='ActivationMemoryHook'),
        dict(type='DistProbeTestHook')
    ]
    cfg = tiny_runner_config('deeplabv3', str(tmp_path), tiny_data, hooks)
    cfg.custom_imports['imports'].append('tests.dist_probe_hook')
    path = str(tmp_path / 'dist_hosvd.py')
    cfg.dump(path)
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHON=sys.executable,
               PORT=str(29600 + os.getpid() % 300))
    result = subprocess.run(
        ['bash', 'tools/dist_train.sh', path, '2', '--work-dir',
         str(tmp_path), '--test'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    ranks = [torch.load(tmp_path / f'rank{r}.pth', weights_only=False)
             for r in range(2)]
    for probe in ranks:
        assert probe['world_size'] == 2
        assert probe['wrapper'] == 'MMDistributedDataParallel'
        assert len(probe['compressed']) == 5
        assert all(probe['compressed'].values())
    first, second = (p['state_dict'] for p in ranks)
    assert first.keys() == second.keys()
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0)
    trained = torch.load(tmp_path / 'iter_2.pth', weights_only=False)
    assert trained['meta']['finetune']['method'] == 'hosvd'
    # --test: both ranks test the final checkpoint, the first reports it
    assert result.stdout.count('analytical (paper)') == 1  # one report
    with open(tmp_path / 'test_results.json') as f:
        record = json.load(f)
    assert record['checkpoint'] == str(tmp_path / 'iter_2.pth')
    assert {'mIoU', 'mAcc'} <= set(record['metrics'])
