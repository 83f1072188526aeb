"""Test a checkpoint: mIoU, mAcc and per-class IoU/Acc, plus activation memory.

Usage::

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out DIR]
        [--show] [--show-dir DIR] [--wait-time S] [--cfg-options ...]
        [--launcher ...] [--tta]

Besides mmseg's per-class table and summary, it prints the activation memory
recorded with the checkpoint by ActivationMemoryHook (peak and mean,
analytical and measured) and writes everything to
``<work_dir>/test_results.json``.

The checkpoint loads with ``weights_only=True`` and the allowlist of
:mod:`mmseg_hosvd.checkpoints.loading`; for a trusted file that needs more,
pass ``--cfg-options trust_checkpoint=True``.
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Optional

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.dist import is_main_process  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import mmseg_hosvd  # noqa: E402,F401  (compat fixes, registrations)
from mmseg_hosvd.checkpoints.trust import (  # noqa: E402
    config_trusts_checkpoints, trusted_checkpoints)
from mmseg_hosvd.engine.config_checks import check_data_roots  # noqa: E402
from mmseg_hosvd.engine.cpu_distributed import (  # noqa: E402
    prepare_cpu_distributed)
from mmseg_hosvd.protocol.reporting import (  # noqa: E402
    checkpoint_record, format_test_report)


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


def trigger_visualization_hook(cfg, args):
    """Turns on SegVisualizationHook for --show / --show-dir."""
    default_hooks = cfg.default_hooks
    if 'visualization' not in default_hooks:
        raise RuntimeError(
            'VisualizationHook must be included in default_hooks; '
            "refer to usage '\"visualization=dict(type="
            "'VisualizationHook')\"'")
    visualization_hook = default_hooks['visualization']
    visualization_hook['draw'] = True
    if args.show:
        visualization_hook['show'] = True
        visualization_hook['wait_time'] = args.wait_time
    if args.show_dir:
        visualizer = cfg.visualizer
        visualizer['save_dir'] = args.show_dir
    return cfg


def build_config(args) -> Config:
    """Loads the config and applies the command-line flags."""
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.tta:
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.out is not None:
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    return cfg


def run_test(cfg: Config, config: str, checkpoint: str) -> Optional[dict]:
    """Tests ``checkpoint`` with the built ``cfg``; the main process prints
    the report and writes ``<work_dir>/test_results.json``.

    Args:
        cfg: The test config (see :func:`build_config`).
        config: The config file, named in the record.
        checkpoint: The checkpoint file.

    Returns:
        The record (see
        :func:`mmseg_hosvd.protocol.reporting.checkpoint_record`) in the main
        process, None in the others.
    """
    check_data_roots(cfg, loaders=('test_dataloader', ))
    prepare_cpu_distributed(cfg)
    with trusted_checkpoints(config_trusts_checkpoints(cfg)):
        runner = Runner.from_cfg(cfg)
        metrics = runner.test()
        if not is_main_process():
            return None
        record = checkpoint_record(config, checkpoint, metrics)
    print(format_test_report(record))
    os.makedirs(cfg.work_dir, exist_ok=True)
    # whole or not at all: a resumed protocol reads it
    path = osp.join(cfg.work_dir, 'test_results.json')
    with open(path + '.tmp', 'w') as f:
        json.dump(record, f, indent=2)
    os.replace(path + '.tmp', path)
    return record


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint!r} does not '
                                'exist')
    return run_test(build_config(args), args.config, args.checkpoint)


if __name__ == '__main__':
    main()
