"""The benchmark scripts run as a user runs them and write their records."""
import json
import subprocess
import sys

import pytest

from ..helpers import ROOT


def _run(args, code):
    """A script run from the repository root that exits with ``code``."""
    result = subprocess.run([sys.executable] + list(args), cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == code, (result.stdout + result.stderr)[-3000:]
    return result


def run_script(*args):
    return _run(args, 0).stdout


def refused(*args):
    """The standard error of a script run that argparse refuses."""
    return _run(args, 2).stderr


def test_activation_memory_records(tmp_path):
    path = tmp_path / 'memory.json'
    out = run_script('benchmarks/activation_memory.py', '--models', 'fcn',
                     '--lean', '--batch', '2', '--size', '64', '--by-module',
                     '--json', str(path))
    records = json.loads(path.read_text())
    assert [(r['method'], r['lean']) for r in records] == [
        ('vanilla', False), ('hosvd', False), ('hosvd', True)]
    keys = {'model', 'method', 'layers', 'lean', 'analytical_mb',
            'measured_mb', 'measured_ratio_to_vanilla', 'weights'}
    assert all(keys <= set(r) for r in records)
    vanilla, plain, lean = records
    assert vanilla['measured_ratio_to_vanilla'] == 1.0
    assert lean['measured_mb'] < plain['measured_mb'] < vanilla['measured_mb']
    assert 'hosvd lean' in out
    for record in records:
        assert sum(record['by_module_mb'].values()) == pytest.approx(
            record['measured_mb'])
    # the lean region keeps ReLU bit masks, not ReLU outputs
    assert 'ReLU' in vanilla['by_module_mb']
    assert 'BitMaskReLU' in lean['by_module_mb'] and 'BitMaskReLU' in out
    assert lean['by_module_mb']['BitMaskReLU'] < vanilla['by_module_mb'][
        'ReLU'] / 8


def test_decomposition_records(tmp_path):
    """The full SVDs and the Gram eigendecomposition find the same exact
    ranks; the default solver (Ritz on the 300-channel mode) the same or
    a little more, never less."""
    path = tmp_path / 'decomposition.json'
    out = run_script('benchmarks/decomposition.py', '--shapes', '4x300x8x8',
                     '--eps', '0.8', '--repeats', '1', '--json', str(path))
    record, = json.loads(path.read_text())
    assert record['shape'] == [4, 300, 8, 8] and record['eps'] == 0.8
    assert record['reference_ranks'] == record['eigh_ranks']
    exact, auto = record['eigh_ranks'], record['auto_ranks']
    assert auto[0] == exact[0] and auto[2:] == exact[2:]
    assert exact[1] <= auto[1] <= exact[1] + 2
    assert all(record[key] > 0 for key in ('svd_s', 'eigh_s', 'auto_s'))
    assert '(4, 300, 8, 8)' in out


def test_decomposition_names_a_bad_shape():
    err = refused('benchmarks/decomposition.py', '--shapes', '4x300x6')
    assert "BxCxHxW with H and W multiples of 4, got '4x300x6'" in err


def test_unfolding_products_records(tmp_path):
    """The view-summed Gram modes and, for a channels-last input, the thin
    product of its channel mode, each with its plain way's time."""
    path = tmp_path / 'products.json'
    out = run_script('benchmarks/unfolding_products.py', '--shapes',
                     '2x300x8x8:cl', '2x16x4x4', '--repeats', '2', '--json',
                     str(path))
    records = json.loads(path.read_text())
    assert [(r['activation'], r['product'], r['mode']) for r in records] == [
        ('2x300x8x8:cl', 'gram', 0), ('2x300x8x8:cl', 'gram', 2),
        ('2x300x8x8:cl', 'gram', 3), ('2x300x8x8:cl', 'thin', 1),
        ('2x16x4x4', 'gram', 0)]
    assert all(r['new_ms'] > 0 and r['old_ms'] > 0 and r['ratio'] > 0
               for r in records)
    assert 'thin' in out
    assert "BxCxHxW or BxCxHxW:cl, got '2x16x4:cl'" in refused(
        'benchmarks/unfolding_products.py', '--shapes', '2x16x4:cl')


def test_tap_weight_grad_records(tmp_path):
    """Both ways on the same slices, each with its time and transient; on
    a wide ASPP branch the taps hold less than the kernel's workspace."""
    path = tmp_path / 'taps.json'
    out = run_script('benchmarks/tap_weight_grad.py', '--convs', 'aspp36',
                     '--repeats', '1', '--json', str(path))
    (record, ) = json.loads(path.read_text())
    assert (record['conv'], record['input'], record['slice']) == (
        'aspp36', [8, 512, 16, 16], 1)
    assert record['kernel_s'] > 0 and record['taps_s'] > 0
    assert record['taps_transient_mb'] < record['kernel_transient_mb']
    assert '| aspp36 | 8x512x16x16, dilation 36 |' in out
    assert '--slice must be in [1, 8], got 9' in refused(
        'benchmarks/tap_weight_grad.py', '--slice', '9')


def test_train_speed_records(tmp_path):
    path = tmp_path / 'speed.json'
    run_script('benchmarks/train_speed.py', '--models', 'fcn', '--methods',
               'vanilla', 'hosvd', 'hosvd_subspace', '--iters', '1',
               '--batch', '2', '--size', '64', '--json', str(path))
    records = json.loads(path.read_text())
    assert [r['method'] for r in records] == [
        'vanilla', 'hosvd', 'hosvd_subspace']
    assert records[0]['ratio_to_vanilla'] == 1.0
    assert all(r['step_time_s'] > 0 for r in records)
    assert [r['solver'] for r in records[:2]] == [None, 'auto']
    assert [r['warm_start'] for r in records[:2]] == [None, True]
    assert len(records[1]['ranks']) == 5
    # each distinct input of FCN's head decomposed at its own layer's ranks
    assert all(records[2][f'compression_ms_{solver}'] > 0
               for solver in ('eigh', 'auto', 'subspace'))


def test_train_speed_lean_variants_without_warm_start(tmp_path):
    path = tmp_path / 'speed.json'
    out = run_script('benchmarks/train_speed.py', '--models', 'fcn',
                     '--methods', 'hosvd', '--iters', '2', '--batch', '2',
                     '--batches', '2', '--size', '64', '--cold-start',
                     '--lean', '--json', str(path))
    records = json.loads(path.read_text())
    assert [(r['method'], r['lean'], r['warm_start']) for r in records] == [
        ('vanilla', False, None), ('hosvd', False, False),
        ('hosvd', True, False)]
    # the lean region measured is the one of FCN's lean config
    assert [r['lean_eps'] for r in records] == [
        None, None, dict(norm=0.8, classifier=0.99)]
    assert 'hosvd lean' in out
    with pytest.raises(AssertionError, match='--batches must be >= 1, '
                       'got 0'):
        run_script('benchmarks/train_speed.py', '--batches', '0')


def test_peak_memory_records(tmp_path):
    path = tmp_path / 'peak.json'
    out = run_script('benchmarks/peak_memory.py', '--models', 'fcn',
                     '--methods', 'vanilla', 'hosvd', '--reductions', 'none',
                     'prefix1+chunkloss1+mb1', '--size', '64', '--batch',
                     '2', '--steps', '1', '--json', str(path))
    records = json.loads(path.read_text())
    # the library's names (reductions/describe.py), in its tags' order
    assert [(r['method'], r['reductions'], r['micro_batch'])
            for r in records] == [
        ('vanilla', [], 2), ('hosvd', [], 2),
        ('vanilla', ['mb1', 'prefix1', 'chunkloss1'], 1),
        ('hosvd', ['mb1', 'prefix1', 'chunkloss1'], 1)]
    keys = {'model', 'method', 'layers', 'lean', 'reductions', 'size',
            'batch', 'micro_batch', 'peak_mb', 'before_mb',
            'peak_increment_mb', 'phase_peaks_mb', 'step_time_s',
            'rss_peak_increment_mb', 'peak_increment_mb_ratio'}
    for record in records:
        assert keys <= set(record)
        phases = record['phase_peaks_mb']
        assert set(phases) == {'preprocess', 'frozen_forward',
                               'finetuned_forward', 'loss', 'backward',
                               'optimizer'}
        # the step's peak is the largest of its phases' peaks
        assert record['peak_increment_mb'] == max(phases.values()) > 0
        assert record['peak_mb'] > record['before_mb'] > 0
    assert records[0]['peak_increment_mb_ratio'] == 1.0
    assert records[2]['peak_increment_mb_ratio'] == 1.0
    # the profiled step is a whole optimizer step, all its micro-batches:
    # it finds what a step without accumulation finds (no gradients, which
    # the optimizer wrapper sets to None), and creates the gradients itself
    for plain, accumulated in ((0, 2), (1, 3)):
        assert records[accumulated]['before_mb'] == pytest.approx(
            records[plain]['before_mb'])
    assert 'hosvd' in out
    # HOSVD's per-mode ranks of the profiled step, per fine-tuned layer
    assert records[0]['ranks'] == {}
    assert len(records[1]['ranks']) == 5
    assert all(len(r) == 4 and min(r) >= 1
               for r in records[1]['ranks'].values())


def test_peak_memory_passes_bits_to_the_quantized_method(tmp_path):
    path = tmp_path / 'peak.json'
    run_script('benchmarks/peak_memory.py', '--models', 'fcn', '--methods',
               'vanilla', 'quantized', 'hosvd', '--bits', '2', '--eps',
               '0.9', '--size', '64', '--batch', '2', '--steps', '1',
               '--json', str(path))
    records = json.loads(path.read_text())
    assert [(r['method'], r['options']) for r in records] == [
        ('vanilla', {}), ('quantized', {'bits': 2}), ('hosvd', {'eps': 0.9})]
    assert all('error' not in r for r in records)


def test_peak_memory_lean_only(tmp_path):
    path = tmp_path / 'peak.json'
    run_script('benchmarks/peak_memory.py', '--models', 'fcn', '--methods',
               'vanilla', 'hosvd', '--lean-only', '--size', '64', '--batch',
               '2', '--steps', '1', '--json', str(path))
    records = json.loads(path.read_text())
    assert [(r['method'], r['lean']) for r in records] == [
        ('vanilla', False), ('hosvd', True)]
    assert [r['lean_eps'] for r in records] == [
        None, dict(norm=0.8, classifier=0.99)]
    assert records[1]['peak_increment_mb'] < records[0]['peak_increment_mb']


def test_peak_memory_keeps_the_records_of_a_run_with_a_failure(tmp_path):
    """One failing configuration (more layers than FCN has) is recorded
    with its error; the others keep their records, and the exit status
    says that one failed."""
    path = tmp_path / 'peak.json'
    result = subprocess.run(
        [sys.executable, 'benchmarks/peak_memory.py', '--models', 'fcn',
         '--methods', 'vanilla', '--layers', '5', '999', '--size', '64',
         '--batch', '2', '--steps', '1', '--json', str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    assert '1 of 2 configurations failed' in result.stderr
    ok, failed = json.loads(path.read_text())
    assert ok['layers'] == 5 and 'error' not in ok
    assert ok['peak_increment_mb_ratio'] == 1.0
    assert failed['layers'] == 999 and '999' in failed['error']
    assert 'failed: ' in result.stdout


def test_activation_memory_lean_bits_code_the_transformer_parts(tmp_path):
    path = tmp_path / 'memory.json'
    out = run_script('benchmarks/activation_memory.py', '--models',
                     'segformer', '--layers', '10', '--lean', '--lean-bits',
                     '8', '--batch', '2', '--size', '64', '--by-module',
                     '--json', str(path))
    vanilla, plain, lean = json.loads(path.read_text())
    assert (plain['lean_bits'], lean['lean_bits']) == (None, 8)
    assert 'hosvd lean8' in out
    # the region's GELU and LayerNorm keep codes; the exact ones are gone
    assert {'QuantizedGELU', 'QuantizedLayerNorm'} <= set(
        lean['by_module_mb'])
    assert plain['by_module_mb']['GELU'] > lean['by_module_mb'][
        'QuantizedGELU']


def test_activation_memory_lean_classifier_follows_the_lean_config(tmp_path):
    """SegFormer-B0's lean config keeps the classifier's input whole;
    ``--lean-classifier-eps`` overrides it."""
    records = {}
    for name, flags in (('config', []),
                        ('hosvd', ['--lean-classifier-eps', '0.99'])):
        path = tmp_path / f'{name}.json'
        run_script('benchmarks/activation_memory.py', '--models',
                   'segformer', '--layers', '5', '--lean', '--batch', '2',
                   '--size', '64', '--by-module', '--json', str(path),
                   *flags)
        records[name] = json.loads(path.read_text())[-1]
    whole, compressed = records['config'], records['hosvd']
    assert whole['lean_eps'] == dict(norm=0.8, classifier=None)
    assert compressed['lean_eps'] == dict(norm=0.8, classifier=0.99)
    # the plain classifier stores its whole (2, 256, 16, 16) float input
    assert whole['by_module_mb']['Conv2d'] == pytest.approx(
        2 * 256 * 16 * 16 * 4 / 2**20)
    assert 'Conv2d' not in compressed['by_module_mb']


def test_activation_memory_rejects_a_bad_classifier_eps():
    assert "expected a number or 'whole', got 'half'" in refused(
        'benchmarks/activation_memory.py', '--lean-classifier-eps', 'half')


def test_peak_memory_refuses_the_old_reduction_names():
    err = refused('benchmarks/peak_memory.py', '--reductions', 'prefix+loss')
    assert "unknown reduction 'prefix'" in err
    assert "'prefix': 'prefix1'" in err  # the renaming shown


def test_probe_startup_records(tmp_path):
    """A new interpreter and a fork of the probe server both start
    tools/train.py in every round; the ratio is of their medians."""
    path = tmp_path / 'startup.json'
    out = run_script('benchmarks/probe_startup.py', '--rounds', '1',
                     '--json', str(path))
    record = json.loads(path.read_text())
    assert [len(t) for t in record['times'].values()] == [1, 1]
    assert record['ratio'] == pytest.approx(
        record['forked_s'] / record['new_interpreter_s'])
    assert record['server_start_s'] > 0
    assert 'forked from the probe server' in out
    assert '--rounds must be >= 1, got 0' in refused(
        'benchmarks/probe_startup.py', '--rounds', '0')
