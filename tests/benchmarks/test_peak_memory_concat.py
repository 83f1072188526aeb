"""benchmarks/peak_memory.py with the in-place concatenation
(``concat``), in the library's reduction order."""
import json

from .test_benchmark_scripts import run_script


def test_peak_memory_writes_the_branches_into_the_concatenation(tmp_path):
    """``concat``: SegFormer's upsampled stage features are not kept beside
    their concatenation (batch 2, 256 channels at 16 x 16: 2 MB)."""
    path = tmp_path / 'peak.json'
    run_script('benchmarks/peak_memory.py', '--models', 'segformer',
               '--methods', 'vanilla', '--reductions', 'prefix1-chunkloss1',
               'concat+prefix1+chunkloss1', '--size', '64', '--batch', '2',
               '--steps', '1', '--json', str(path))
    plain, concat = json.loads(path.read_text())
    assert plain['reductions'] == ['prefix1', 'chunkloss1']
    assert concat['reductions'] == ['prefix1', 'chunkloss1', 'concat']
    assert plain['phase_peaks_mb']['finetuned_forward'] - concat[
        'phase_peaks_mb']['finetuned_forward'] >= 0.9 * 2.0
