"""Whole-step peak memory of fine-tuning, as ratios to vanilla.

Each configuration (model, method, layer count, lean or not, reductions)
runs in a fresh process: the protocol model is set up for fine-tuning as
``CompressConvHook`` does, then full training steps run (data
preprocessor, forward, mmseg's decode-head loss on full-size labels,
backward, optimizer step with the config's clipping). It records

- ``peak_increment_mb``: the most memory live at once during a step (one
  optimizer step: with accumulation, all its micro-batches, as
  ``StepPeakMemoryHook`` profiles training) over what was live before
  it, from PyTorch's allocation events (the
  profiler's memory timeline; see ``mmseg_hosvd/utils/step_memory.py``),
  and
  ``phase_peaks_mb``, the same for each phase (preprocess, frozen forward,
  fine-tuned forward, loss with its own backward, backward, optimizer),
  so a reader sees what sets the peak;
- ``before_mb``: what the step finds allocated (parameters, buffers,
  optimizer state; gradients are None between steps, as in training),
  and ``peak_mb`` = before + increment;
- ``rss_peak_increment_mb``: the process's peak resident set over its
  resident set before the first step, in steps run without the profiler
  (what the operating system, and an out-of-memory kill, see);
- ``step_time_s``: the median time of the unprofiled steps after one
  warm-up step;
- ``options``: the method's options as applied (``--eps`` for the
  decompositions, ``--bits`` for ``quantized``);
- on CUDA, ``cuda_max_allocated_mb`` of the profiled step.

Reductions (``--reductions``, each a set of the library's reduction names,
``mmseg_hosvd/reductions/describe.py``'s ``REDUCTION_NAMES``, joined by '-'
or '+', 'none' for plain): ``amp`` (bfloat16 autocast on CPU, float16 on
CUDA), ``prefix<n>`` (the frozen prefix in micro-batches of n images,
``FrozenPrefixHook``), ``chunkloss<n>`` (the decode head's loss n images at
a time, ``ChunkedLossHook``), ``concat`` (the decode head's branches
written into its concatenation, ``ConcatInPlaceHook``), ``ckpt`` (the
fine-tuned blocks recomputed in backward, ``ActivationCheckpointHook``) and
``mb<n>`` (gradient accumulation over micro-batches of n images, MMEngine's
``accumulative_counts``). Ratios
compare each record with vanilla of the same model, layers and reductions,
measured in the same run.

Usage::

    python benchmarks/peak_memory.py [--models deeplabv3 pspnet]
        [--methods vanilla hosvd] [--layers 5] [--lean | --lean-only]
        [--lean-bits 8] [--eps 0.8] [--bits 8]
        [--reductions none amp mb2] [--size 512] [--batch 8]
        [--steps 3] [--from-protocol] [--json PATH]
"""
import argparse
import json
import statistics
import subprocess
import sys
import time

# mmseg_hosvd first: with mmcv-lite, mmseg imports only after its compat fixes
import mmseg_hosvd  # noqa: F401  # isort: skip
from json_records import write_json
from protocol_inputs import add_input_arguments

from mmseg_hosvd.methods import method_names
from mmseg_hosvd.ops.quantized_codes import BITS
from mmseg_hosvd.protocol.matrix import MODEL_CONFIGS
from mmseg_hosvd.reductions.describe import (
    parse_reductions_tag,
    reduction_names,
)

#: Prefix of the line a measuring process prints its record on.
RECORD = 'PEAK_MEMORY_RECORD '
#: The benchmark's names before it spoke the library's (see the CHANGELOG).
RENAMED = {'prefix': 'prefix1', 'loss': 'chunkloss1', 'checkpoint': 'ckpt',
           'micro<m>': 'mb<m>'}


def reductions_of(text: str) -> list:
    """The reduction names of a set ('none' for none), checked, in the
    library's order (``reduction_names``)."""
    try:
        return reduction_names(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f'{error} (renamed: {RENAMED})') from None


def micro_batch_of(reductions: list, batch: int) -> int:
    """The micro-batch a set of reductions asks for (the batch if none)."""
    micro = parse_reductions_tag('-'.join(reductions))['micro_batch']
    if micro is None:
        return batch
    if batch % micro:
        raise SystemExit(f'mb{micro}: the batch {batch} is not a multiple '
                         f'of {micro}')
    return micro


def measure_in_process(spec: dict) -> dict:
    """Runs one configuration here and returns its record."""
    from peak_memory_setup import build_setup
    from step_peak import (
        max_rss_mb,
        profile_step,
        resident_bytes,
        rss_mb,
        state_tensors,
        step_ranks,
        train_step,
    )
    setup = build_setup(spec)
    model, optim_wrapper, batches = (setup['model'], setup['optim_wrapper'],
                                     setup['batches'])
    times = []
    rss_before = rss_mb()
    for _ in range(1 + spec['steps']):
        start = time.perf_counter()
        for data in batches:
            train_step(model, data, optim_wrapper)
        times.append(time.perf_counter() - start)
    rss_peak = max_rss_mb()
    before = resident_bytes(state_tensors(model, optim_wrapper.optimizer))
    result = profile_step(model, batches, optim_wrapper, setup['device'])
    before_mb = before / 2**20
    return dict(spec, **result,
                before_mb=before_mb,
                peak_mb=before_mb + result['peak_increment_mb'],
                rss_before_mb=rss_before,
                rss_peak_increment_mb=max(rss_peak - rss_before, 0.0),
                step_time_s=statistics.median(times[1:]),
                ranks=setup['ranks'] or step_ranks(model),
                options=setup['options'],
                lean_eps=setup['plan']['lean_eps'])


def measure(spec: dict) -> dict:
    """Runs one configuration in a fresh process and returns its record;
    for a configuration that failed, ``spec`` with the end of its error
    output as ``error``."""
    result = subprocess.run(
        [sys.executable, __file__, '--one', json.dumps(spec)],
        capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines()
             if line.startswith(RECORD)]
    if result.returncode != 0 or not lines:
        return dict(spec, error=result.stderr[-3000:] or
                    f'exit status {result.returncode}, no record')
    return json.loads(lines[-1][len(RECORD):])


def add_ratios(records: list) -> None:
    """Ratios to vanilla of the same model, layers, size and reductions."""
    def key(r):
        return (r['model'], r['layers'], r['size'], r['batch'],
                tuple(r['reductions']))

    records = [r for r in records if 'error' not in r]
    vanilla = {key(r): r for r in records
               if r['method'] == 'vanilla' and not r['lean']}
    for record in records:
        base = vanilla.get(key(record))
        for name in ('peak_increment_mb', 'peak_mb',
                     'rss_peak_increment_mb', 'step_time_s'):
            record[f'{name}_ratio'] = (record[name] / base[name]
                                       if base and base[name] else None)


def print_table(records: list) -> None:
    """One line per record, with the phase that sets its peak."""
    print(f"{'model':>10} {'l':>3} {'method':>20} {'reductions':>12} "
          f"{'incr MB':>8} {'/van':>5} {'peak MB':>8} {'RSS+ MB':>8} "
          f"{'/van':>5} {'step s':>7} {'/van':>5}  peak phase")
    for r in records:
        name = r['method'] + (' lean' if r['lean'] else '') + (
            str(r['lean_bits']) if r.get('lean_bits') else '')
        if 'error' in r:
            print(f"{r['model']:>10} {r['layers']:>3} {name:>20} "
                  f"{'-'.join(r['reductions']) or 'none':>12} failed: "
                  f"{r['error'].strip().splitlines()[-1]}", flush=True)
            continue
        phases = r['phase_peaks_mb']
        top = max(phases, key=phases.get)
        print(f"{r['model']:>10} {r['layers']:>3} {name:>20} "
              f"{'-'.join(r['reductions']) or 'none':>12} "
              f"{r['peak_increment_mb']:8.1f} "
              f"{r['peak_increment_mb_ratio'] or 0:5.2f} "
              f"{r['peak_mb']:8.1f} {r['rss_peak_increment_mb']:8.1f} "
              f"{r['rss_peak_increment_mb_ratio'] or 0:5.2f} "
              f"{r['step_time_s']:7.3f} {r['step_time_s_ratio'] or 0:5.2f}"
              f"  {top} ({phases[top]:.1f})", flush=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+', choices=sorted(MODEL_CONFIGS),
                        default=['deeplabv3', 'pspnet'])
    parser.add_argument('--methods', nargs='+', choices=method_names(),
                        default=['vanilla', 'hosvd'])
    parser.add_argument('--layers', nargs='+', type=int, default=[5])
    parser.add_argument('--lean', action='store_true',
                        help='also measure the lean variant of each '
                        'compressing method')
    parser.add_argument('--lean-only', action='store_true',
                        help='measure only the lean variant of each '
                        'compressing method (vanilla stays plain)')
    parser.add_argument('--lean-bits', type=int, default=None,
                        help='lean variants also keep their LayerNorm and '
                        'GELU inputs as codes of this many bits')
    parser.add_argument('--reductions', nargs='+', type=reductions_of,
                        default=[[]])
    parser.add_argument('--eps', type=float, default=0.8)
    parser.add_argument('--bits', type=int, default=8, choices=BITS,
                        help='bits per element of the quantized method')
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--steps', type=int, default=3,
                        help='timed steps after one warm-up step')
    add_input_arguments(parser)
    parser.add_argument('--one', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.lean_bits is not None and not (args.lean or args.lean_only):
        raise SystemExit(f'--lean-bits {args.lean_bits} needs --lean or '
                         '--lean-only')
    if args.one:
        print(RECORD + json.dumps(measure_in_process(json.loads(args.one))))
        return
    methods = ['vanilla'] + [m for m in args.methods if m != 'vanilla']
    compressing = [m for m in methods if m != 'vanilla']
    variants = [('vanilla', False)]
    if not args.lean_only:
        variants += [(m, False) for m in compressing]
    if args.lean or args.lean_only:
        variants += [(m, True) for m in compressing]
    records = []
    for model in args.models:
        for layers in args.layers:
            for reductions in args.reductions:
                for method, lean in variants:
                    spec = dict(model=model, method=method, layers=layers,
                                lean=lean,
                                lean_bits=args.lean_bits if lean else None,
                                reductions=reductions,
                                size=args.size, batch=args.batch,
                                micro_batch=micro_batch_of(reductions,
                                                           args.batch),
                                eps=args.eps, bits=args.bits,
                                steps=args.steps,
                                device=args.device,
                                from_protocol=args.from_protocol)
                    records.append(measure(spec))
                    add_ratios(records)
                    if args.json:  # after each: a later failure loses none
                        write_json(args.json, records)
    print_table(records)
    failed = [r for r in records if 'error' in r]
    if failed:
        raise SystemExit(f'{len(failed)} of {len(records)} configurations '
                         'failed (their records hold the error)')


if __name__ == '__main__':
    main()
