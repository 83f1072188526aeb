"""Say the memory, get the config: measure set-ups, recommend one.

For a fine-tuning config (one with a ``CompressConvHook``: which layers to
fine-tune), every set-up of ``mmseg_hosvd.planning.setups.SETUPS`` measured
by default (or those of ``--setups``) runs a few real training iterations
of ``tools/train.py`` in a process of its own (forked from one that
imported the training code once, or a new interpreter where CUDA is
available) on the config's model, crop, batch and data,
from ``--load-from`` (or the config's ``load_from``): its whole-step peak
memory, its step time and, for a compressed set-up, the relative error
of its fine-tuned layers' weight gradients, taken as one vector, on the
first batch. The table says which fit ``--budget-mb``; among those whose
step is within ``--time-factor`` of the fastest fitting one's, the
recommendation is the fastest exact set-up, else the one with the least
gradient error.
``--out`` writes it as a config for ``tools/train.py``. A set-up whose
probe fails or runs past ``--timeout`` is reported and left out.
``--jobs N`` runs N probes at a time, each on an Nth of the CPUs: the
peaks are those of one process each, and the step times compare the
set-ups with each other at that thread count. The mixed-precision set-ups
are skipped by default where a bfloat16 convolution runs more than
``--time-factor`` times slower than in float32.

Usage::

    python tools/plan.py CONFIG --budget-mb 40 [--load-from CKPT]
        [--setups vanilla vanilla-exact hosvd-eps0.8 ...] [--iters 4]
        [--time-factor 2] [--jobs 1] [--work-dir DIR] [--out PATH]
        [--json PATH]
"""
import argparse
import dataclasses
import json
import os.path as osp
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

# mmseg_hosvd first: with mmcv-lite, mmseg imports only after its compat fixes
import mmseg_hosvd  # noqa: F401  # isort: skip
import torch
from mmengine.config import Config

from mmseg_hosvd.planning.probe_process import start_server
from mmseg_hosvd.planning.probe_runs import (
    PROFILED_ITERATION,
    config_text,
    probe_order,
    probe_threads,
    run_probe,
)
from mmseg_hosvd.planning.recommendation import fits, recommend
from mmseg_hosvd.planning.setups import (
    CHECKPOINTING_SKIPPED_UP_TO,
    compress_hook_of,
    finetuned_layer_count,
    get_setup,
    inapplicable,
    setup_names,
    setup_overrides,
    skipped_by_default,
)
from mmseg_hosvd.utils.autocast_speed import autocast_slowdown

TRAIN = osp.join(osp.dirname(osp.abspath(__file__)), 'train.py')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a fine-tuning config')
    parser.add_argument('--budget-mb', type=float, required=True,
                        help='memory for the whole-step peak (MB)')
    parser.add_argument('--load-from', help='checkpoint to start from '
                        '(default: the config\'s load_from)')
    parser.add_argument('--setups', nargs='+', choices=setup_names(),
                        help='set-ups to measure (default: every one the '
                        "config's batch size can take; checkpointing only "
                        'above {} fine-tuned layers)'.format(
                            CHECKPOINTING_SKIPPED_UP_TO))
    parser.add_argument('--iters', type=int, default=4,
                        help='training iterations per set-up (> 2)')
    parser.add_argument('--time-factor', type=float, default=2.0,
                        help='how much slower than the fastest fitting '
                        'set-up a set-up may be and still be recommended '
                        '(also: the autocast set-ups are skipped where '
                        'bfloat16 is slower than this)')
    parser.add_argument('--timeout', type=float, default=600,
                        help='seconds per set-up')
    parser.add_argument('--jobs', type=int, default=1,
                        help='probes run at a time, each on an equal share '
                        'of the CPUs')
    parser.add_argument('--work-dir', help='where the probes run (default '
                        'work_dirs/plan/<config name>)')
    parser.add_argument('--out', help='write the recommended config here')
    parser.add_argument('--json', help='write the measurements here')
    args = parser.parse_args(argv)
    if not args.budget_mb > 0:
        parser.error(f'--budget-mb must be > 0, got {args.budget_mb:g}')
    if args.iters <= PROFILED_ITERATION:
        parser.error(f'--iters must be > {PROFILED_ITERATION} (one step '
                     f'timed after the profiled one), got {args.iters}')
    if not args.time_factor >= 1:
        parser.error(f'--time-factor must be >= 1, got {args.time_factor:g}')
    if args.jobs < 1:
        parser.error(f'--jobs must be >= 1, got {args.jobs}')
    return args


def table(measurements, budget_mb):
    """The Markdown table of the measured set-ups."""
    lines = ['| set-up | exact | whole-step peak (MB) | step (s) | '
             'gradient error | fits |', '|---|---|---|---|---|---|']
    for m in measurements:
        error = '-' if m.error is None else f'{m.error:.3f}'
        if get_setup(m.name).options.get('lean'):
            error += ' (layers only)'
        lines.append(f"| {m.name} | {'yes' if m.exact else 'no'} | "
                     f'{m.peak_mb:.1f} | {m.step_s:.3f} | {error} | '
                     f"{'yes' if fits(m, budget_mb) else 'no'} |")
    return '\n'.join(lines)


def chosen_setups(names, batch_size, slow_autocast=None, layer_count=None):
    """The set-ups to measure.

    Args:
        names: Set-up names (``--setups``), or None for the defaults.
        batch_size: The config's training batch size.
        slow_autocast: Why the autocast set-ups are not worth probing here
            (:func:`slow_autocast_reason`), or None.
        layer_count: The layers the config fine-tunes, or None when
            unknown (:func:`~mmseg_hosvd.planning.setups.
            finetuned_layer_count`).

    Returns:
        The named set-ups, each once, each of which must take the batch
        size; or, for None, every set-up that does, but checkpointing
        where :func:`~mmseg_hosvd.planning.setups.skipped_by_default`
        says so and, when ``slow_autocast`` is given, those under
        autocast (the others are reported as skipped).

    Raises:
        ValueError: For a named set-up the batch size cannot take.
    """
    if names is not None:
        for name in names:
            reason = inapplicable(get_setup(name), batch_size)
            if reason is not None:
                raise ValueError(reason)
        return [get_setup(name) for name in dict.fromkeys(names)]
    setups = []
    for name in setup_names():
        setup = get_setup(name)
        reason = (inapplicable(setup, batch_size)
                  or skipped_by_default(setup, layer_count))
        if reason is None and setup.autocast and slow_autocast:
            reason = f'set-up {name!r}: {slow_autocast}'
        if reason is None:
            setups.append(setup)
        else:
            print(f'skipped: {reason}', flush=True)
    return setups


def slow_autocast_reason(time_factor):
    """Why the autocast set-ups are not worth a probe on this machine.

    Args:
        time_factor: The slowdown (``--time-factor``) above which a set-up
            cannot be recommended.

    Returns:
        The reason (a bfloat16 convolution more than ``time_factor`` times
        slower than in float32, as on a processor without bfloat16
        arithmetic), or None.
    """
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    slowdown = autocast_slowdown(device)
    if slowdown <= time_factor:
        return None
    return (f'a bfloat16 convolution takes {slowdown:.0f} times as long as '
            f'in float32 on this {device}, more than --time-factor '
            f'{time_factor:g} (name the set-up in --setups to measure it)')


def main(argv=None):
    args = parse_args(argv)
    start_server()
    cfg = Config.fromfile(args.config)
    hook = compress_hook_of(cfg)
    slow = (slow_autocast_reason(args.time_factor)
            if args.setups is None else None)
    setups = chosen_setups(args.setups, cfg.train_dataloader.batch_size,
                           slow, finetuned_layer_count(hook))
    name = osp.splitext(osp.basename(args.config))[0]
    work_dir = args.work_dir or osp.join('work_dirs', 'plan', name)
    load_from = args.load_from or cfg.get('load_from')
    start = time.time()
    threads = probe_threads(args.jobs)

    def measure(setup):
        began = time.time()
        print(f'[{began - start:6.0f} s] measuring {setup.name}', flush=True)
        try:
            measured = run_probe(TRAIN, args.config, setup,
                                 osp.join(work_dir, setup.name), args.iters,
                                 load_from, args.timeout, threads)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            print(f'set-up {setup.name} left out: {error}', flush=True)
            return None
        print(f'[{time.time() - start:6.0f} s] measured {setup.name} in '
              f'{time.time() - began:.1f} s', flush=True)
        return measured

    order = probe_order(setups)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        measured = dict(zip([s.name for s in order],
                            pool.map(measure, order), strict=True))
    measurements = [measured[s.name] for s in setups
                    if measured[s.name] is not None]
    if not measurements:
        print(f'error: no set-up could be measured (see the probes in '
              f'{work_dir})', file=sys.stderr)
        return 1
    print(table(measurements, args.budget_mb))
    if any(get_setup(m.name).options.get('lean') for m in measurements):
        print('(layers only): the error of the fine-tuned layers; the lean '
              "region's compressed norm and classifier inputs add error "
              'that is not measured')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump([dataclasses.asdict(m) for m in measurements], f,
                      indent=1)
    try:
        chosen = recommend(measurements, args.budget_mb, args.time_factor)
    except ValueError as error:
        print(f'error: {error}; planning took {time.time() - start:.0f} s',
              file=sys.stderr)
        return 1
    error = ('exact' if chosen.exact else 'gradient error not measured'
             if chosen.error is None else
             f'gradient error {chosen.error:.3f}')
    print(f'recommended within {args.budget_mb:g} MB: {chosen.name} '
          f'(whole-step peak {chosen.peak_mb:.1f} MB, step '
          f'{chosen.step_s:.3f} s, {error}); planning took '
          f'{time.time() - start:.0f} s')
    if args.out:
        overrides = setup_overrides(cfg, get_setup(chosen.name))
        if load_from is not None:
            overrides['load_from'] = load_from
        with open(args.out, 'w') as f:
            f.write(config_text(args.config, overrides, (
                f'set-up {chosen.name} for a budget of {args.budget_mb:g} '
                f'MB: whole-step peak {chosen.peak_mb:.1f} MB, step '
                f'{chosen.step_s:.3f} s, {error}, measured by '
                f'{args.iters} iterations')))
        print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
