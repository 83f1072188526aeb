"""Compare finished runs: one table (Markdown + CSV) and a Pareto plot.

Usage::

    python tools/compare.py 'work_dirs/*_shapes-target-128x128' \
        [--csv comparison.csv] [--markdown comparison.md] [--plot pareto.png]
        [--step-peak-plot peaks.png] [--front-plot front.png]
        [--decision [FRACTION ...]]

A run is a work dir with ``test_results.json`` (written by tools/test.py);
the runs of other seeds in its ``seed<N>`` sub-folders
(``tools/run_protocol.py --seeds``) are found with it. Directories that are
not finished runs are listed and skipped.

The runs of one row (model, method and setting, reductions, layers) over
several seeds make one row: mIoU and mAcc as mean ± standard deviation over
the seeds, the number of seeds, and the mIoU difference to vanilla of the
same model and layers with a 95% Student t interval paired by seed (``~``:
the interval holds 0, the difference is not significant; a row sharing one
seed with vanilla has no interval). A table of single runs has no seed
columns. The ``front`` column says whether a row is on its model's front of
mIoU against the whole-step peak (a row with a difference to vanilla placed
at vanilla's mean plus that difference, so that a row run on fewer seeds is
not placed by their luck): no other row of that model needs no
more memory and reaches no lower mIoU while better in one of the two; the
step-peak plot rings these rows, and ``--front-plot`` draws one panel per
model and layer count, relative to its reference vanilla row (of its
vanilla rows, the one with the largest whole-step peak), with these rows
named; a model and layer count without a vanilla row with a whole-step
peak gets no panel, and a line on stderr says so. The table's ratio
columns are each row's against its own vanilla row (the one with its exact
reductions).

A second table follows for the models with vanilla rows: the calibrated
mIoU (the last validation of a ``*_calib_*`` work dir among the paths),
vanilla at each layer count, its gain over the calibrated classifier, and
its difference to the next smaller layer count, paired by seed.

``--decision [FRACTION ...]`` adds the set-up to use for each model and
layer count within each budget, a fraction of vanilla's whole-step peak
(1, 0.9, 0.8, 0.7, 0.6, 0.5 by default): the fitting row with the highest
mean mIoU difference to vanilla (one whose interval holds 0 counting as 0,
exact rows first on a tie), with that difference, its interval, and its
peak and step time against vanilla's
(:mod:`mmseg_hosvd.protocol.decision_table`). Where the paths hold vanilla
rows with different exact reductions (one with the in-place
concatenation, one without), the fractions are of the one with the
largest peak, for every row of that model and layer count. A line under
the table names the model and layer counts it cannot place (no vanilla row
with a whole-step peak).
"""
import argparse
import os
import os.path as osp
import sys

from mmseg_hosvd.protocol.comparison import (
    collect,
    expand,
    markdown_table,
    model_name,
    write_csv,
)
from mmseg_hosvd.protocol.decision_table import (
    BUDGETS,
    check_budgets,
    decision_table,
    layers_phrase,
    unplaced,
)
from mmseg_hosvd.protocol.fine_tuning_gain import (
    calibrations,
    gain_rows,
    gain_table,
)
from mmseg_hosvd.protocol.front_panels import plot_front_panels
from mmseg_hosvd.protocol.pareto_plot import plot_pareto
from mmseg_hosvd.protocol.start_groups import separated_models


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('paths', nargs='+',
                        help='work dirs or glob patterns of finished runs')
    parser.add_argument('--csv', help='write the table as CSV here')
    parser.add_argument('--markdown', help='write the Markdown table here')
    parser.add_argument('--plot', help='write the accuracy-memory PNG here')
    parser.add_argument('--step-peak-plot',
                        help='write mIoU against the whole-step peak here')
    parser.add_argument('--front-plot',
                        help='write one panel per model here: mIoU against '
                        "vanilla's over the whole-step peak against "
                        "vanilla's, the front named")
    parser.add_argument('--decision', nargs='*', type=float,
                        metavar='FRACTION',
                        help='add the set-up to use within each budget, a '
                        "fraction of vanilla's whole-step peak (default "
                        f"{' '.join(str(b) for b in BUDGETS)})")
    args = parser.parse_args(argv)
    try:
        check_budgets(args.decision or ())
    except ValueError as error:
        parser.error(f'--decision: {error}')
    return args


def main(argv=None):
    args = parse_args(argv)
    rows, skipped = collect(args.paths)
    for path, reason in skipped:
        print(f'skipped {path}: {reason}', file=sys.stderr)
    if not rows:
        print('no finished runs found', file=sys.stderr)
        return 1
    separated = separated_models(rows)
    for model, starts in separated.items():
        print(f'note: the runs of {model} started from {len(starts)} '
              f"checkpoints ({', '.join(starts)}: SHA-256 prefixes); each "
              f'is compared with the runs from its own start, as '
              f"{', '.join(f'{model}@{s}' for s in starts)}",
              file=sys.stderr)
    table = markdown_table(rows)
    gains = gain_rows(rows, calibrations(expand(args.paths), model_name,
                                         by_start=bool(separated)))
    if gains:
        table += '\n\nFine-tuning gain\n\n' + gain_table(gains)
    if args.decision is not None:
        table += ('\n\nSet-up by memory budget\n\n' +
                  decision_table(rows, args.decision or BUDGETS))
    print(table)
    for path in (args.csv, args.markdown, args.plot, args.step_peak_plot,
                 args.front_plot):
        if path:
            os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    if args.csv:
        write_csv(rows, args.csv)
    if args.markdown:
        with open(args.markdown, 'w') as f:
            f.write(table + '\n')
    if args.plot:
        plot_pareto(rows, args.plot)
    if args.step_peak_plot:
        plot_pareto(rows, args.step_peak_plot, x='step_peak_mb')
    if args.front_plot:
        try:
            plot_front_panels(rows, args.front_plot)
        except ValueError as error:
            print(f'--front-plot: {error}', file=sys.stderr)
            return 1
        for model, layers in unplaced(rows):
            print(f'--front-plot: no panel for {model} '
                  f'{layers_phrase(layers)} (no vanilla row with a whole-'
                  'step peak)', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
