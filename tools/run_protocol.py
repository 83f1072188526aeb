"""Run the whole protocol matrix on the generated dataset, then compare.

For each model: pretrain and calibrate once, then fine-tune every method at
5 and 10 layers, test each, and write the comparison (Markdown, CSV, plot)
of every finished fine-tuning run of these models. Finished stages are
skipped, so the command can be stopped and resumed. ``--methods
hosvd-eps0.8-lean hosvd-subspace`` adds the runs beyond the paper.
``--seeds 0 1 2`` fine-tunes every row once per seed
(``--cfg-options randomness.seed=N``, in ``<work dir>/seed<N>``) from the
same calibrated checkpoint; the comparison then shows the mean and spread
over the seeds and intervals paired by seed.

Usage::

    python tools/run_protocol.py [--quick] [--models deeplabv3 pspnet]
        [--methods vanilla hosvd-eps0.8] [--layers 5 10] [--seeds 0 1 2]
        [--out work_dirs/protocol]
"""
import argparse
import os
import os.path as osp
import time

import mmseg_hosvd  # noqa: F401
from mmseg_hosvd.protocol.comparison import (
    collect,
    markdown_table,
    write_csv,
)
from mmseg_hosvd.protocol.config_table import protocol_tags
from mmseg_hosvd.protocol.matrix import (
    DATA_ROOT,
    MODEL_CONFIGS,
    PAPER_MODELS,
    config_path,
    ensure_dataset,
    work_dir,
)
from mmseg_hosvd.protocol.pareto_plot import plot_pareto
from mmseg_hosvd.protocol.peers import peer_tags
from mmseg_hosvd.protocol.runs import ensure_trained, ensure_trained_and_tested

QUICK = dict(
    models=['deeplabv3', 'pspnet'],
    methods=['vanilla', 'gradfilter', 'svd-eps0.8', 'hosvd-eps0.8'],
    layers=[5])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help=f'only {QUICK} (about 15 minutes)')
    parser.add_argument('--models', nargs='+', choices=sorted(MODEL_CONFIGS),
                        default=list(PAPER_MODELS))
    parser.add_argument('--methods', nargs='+',
                        choices=list(protocol_tags() + peer_tags()),
                        default=list(protocol_tags(extensions=False)),
                        help='rows to run: the paper\'s by default; also '
                        'the extensions (e.g. hosvd-eps0.8-lean, qact8) and '
                        'the peers (e.g. vanilla-mb1, vanilla-ckpt, '
                        'hosvd-eps0.8-amp)')
    parser.add_argument('--layers', nargs='+', type=int, choices=[5, 10],
                        default=[5, 10])
    parser.add_argument('--seeds', nargs='+', type=int,
                        help='fine-tune each row once per seed, each in '
                        'its own work dir (<work dir>/seed<N>); by default '
                        'once, with the config\'s seed, in its work dir. '
                        'Pretraining and calibration run once either way')
    parser.add_argument('--out', default='work_dirs/protocol',
                        help='where the comparison is written')
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    return args


def finetuning_runs(model, args):
    """(config, seed, label) of each fine-tuning run of ``model``: every
    method and layer count, once per seed (once with the config's seed,
    None, without ``--seeds``)."""
    return [(config_path(model, 'finetune', method, layers), seed,
             f'{model} {method} l{layers}' +
             ('' if seed is None else f' seed {seed}'))
            for method in args.methods for layers in args.layers
            for seed in (args.seeds or [None])]


def main(argv=None):
    args = parse_args(argv)
    start = time.time()

    def log(message):
        print(f'[{(time.time() - start) / 60:5.1f} min] {message}',
              flush=True)

    ensure_dataset(DATA_ROOT, log)
    runs = {model: finetuning_runs(model, args) for model in args.models}
    total = len(args.models) * 2 + sum(len(r) for r in runs.values())
    done = 0
    for model in args.models:
        for stage in ('pretrain', 'calib'):
            done += 1
            log(f'[{done}/{total}] {model} {stage}')
            ensure_trained(config_path(model, stage), log)
        for config, seed, label in runs[model]:
            done += 1
            log(f'[{done}/{total}] {label}')
            ensure_trained_and_tested(config, log, seed=seed)
    finished = [
        work_dir(config_path(m, 'finetune', t, n)) for m in args.models
        for t in protocol_tags() + peer_tags() for n in (5, 10)
    ]
    rows, skipped = collect([d for d in finished if osp.isdir(d)])
    for path, reason in skipped:
        log(f'skipped {path}: {reason}')
    os.makedirs(args.out, exist_ok=True)
    table = markdown_table(rows)
    with open(osp.join(args.out, 'comparison.md'), 'w') as f:
        f.write(table + '\n')
    write_csv(rows, osp.join(args.out, 'comparison.csv'))
    plot_pareto(rows, osp.join(args.out, 'pareto.png'))
    plot_pareto(rows, osp.join(args.out, 'pareto_step_peak.png'),
                x='step_peak_mb')
    print(table)
    log(f'wrote {args.out}/comparison.md, comparison.csv, pareto.png, '
        'pareto_step_peak.png')


if __name__ == '__main__':
    main()
