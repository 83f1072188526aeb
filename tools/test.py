"""Test a checkpoint: mIoU, mAcc and per-class IoU/Acc, plus activation memory.

Usage::

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out DIR]
        [--show] [--show-dir DIR] [--wait-time S] [--cfg-options ...]
        [--launcher ...] [--tta]

Besides mmseg's per-class table and summary, it prints the activation memory
recorded with the checkpoint by ActivationMemoryHook (peak and mean,
analytical and measured) and writes everything to
``<work_dir>/test_results.json``. The work is
:mod:`mmseg_hosvd.protocol.testing`'s (``tools/train.py --test`` runs it
too); this file is its command line.

The checkpoint loads with ``weights_only=True`` and the allowlist of
:mod:`mmseg_hosvd.checkpoints.loading`; for a trusted file that needs more,
pass ``--cfg-options trust_checkpoint=True``.
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction

import mmseg_hosvd  # noqa: F401  (compat fixes, registrations)
from mmseg_hosvd.protocol.reporting import format_test_report
from mmseg_hosvd.protocol.testing import build_test_config, run_test


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Test (and eval) a segmentor checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing evaluation metrics')
    parser.add_argument(
        '--out',
        type=str,
        help='the directory to save the output prediction for offline '
        'evaluation')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved. '
        'If specified, it will be automatically saved '
        'to the work_dir/timestamp/show_dir')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument(
        '--tta', action='store_true', help='Test time augmentation')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_config(args) -> Config:
    """Loads the config and applies the command-line flags."""
    return build_test_config(
        args.config, args.checkpoint, work_dir=args.work_dir,
        launcher=args.launcher, cfg_options=args.cfg_options, out=args.out,
        show=args.show, show_dir=args.show_dir, wait_time=args.wait_time,
        tta=args.tta)


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint!r} does not '
                                'exist')
    record = run_test(build_config(args), args.config, args.checkpoint)
    if record is not None:
        print(format_test_report(record))
    return record


if __name__ == '__main__':
    main()
