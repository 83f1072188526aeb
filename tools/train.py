"""Train a segmentor with MMEngine's Runner (mmseg's tools/train.py flags).

Usage::

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp]
        [--test] [--cfg-options KEY=VALUE ...]
        [--launcher {none,pytorch,slurm,mpi}]

``--test`` then tests the last checkpoint in the same process, as
``tools/test.py`` would (the same report and ``test_results.json``), without
the start-up of a second process.

Checkpoints (``load_from``, resumed ones) load with ``weights_only=True`` and
the allowlist of :mod:`mmseg_hosvd.checkpoints.loading`; for a trusted file
that needs more, set ``trust_checkpoint = True`` in the config or pass
``--cfg-options trust_checkpoint=True``.
"""
import argparse
import logging
import os
import os.path as osp

import torch
from mmengine.config import Config, DictAction
from mmengine.dist import barrier
from mmengine.logging import print_log
from mmengine.runner import Runner

import mmseg_hosvd  # noqa: F401  (compat fixes, registrations)
from mmseg_hosvd.checkpoints.trust import (
    config_trusts_checkpoints,
    trusted_checkpoints,
)
from mmseg_hosvd.engine.config_checks import check_train_config
from mmseg_hosvd.engine.cpu_distributed import prepare_cpu_distributed
from mmseg_hosvd.engine.hooks.safe_checkpoint_hook import (
    use_safe_checkpoint_hook,
)
from mmseg_hosvd.protocol.reporting import format_test_report
from mmseg_hosvd.protocol.testing import build_test_config, run_test


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        action='store_true',
        default=False,
        help='continue the run of the work dir from its latest checkpoint '
        '(load_from then only starts a run whose work dir holds none)')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training '
        '(bfloat16 on CPU, float16 on CUDA)')
    parser.add_argument(
        '--test',
        action='store_true',
        help='after training, test the last checkpoint in this process '
        'as tools/test.py does')
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
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


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
    if args.amp:
        optim_wrapper = cfg.optim_wrapper.type
        if optim_wrapper in ('AmpOptimWrapper', 'AutocastOptimWrapper'):
            print_log(
                'AMP training is already enabled in your config.',
                logger='current',
                level=logging.WARNING)
        elif torch.cuda.is_available():
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
        else:
            # MMEngine's AmpOptimWrapper is GPU-only; bfloat16 autocast on CPU
            cfg.optim_wrapper.type = 'AutocastOptimWrapper'
            cfg.optim_wrapper.dtype = 'bfloat16'
    cfg.resume = args.resume
    if use_safe_checkpoint_hook(cfg):
        print_log(
            'default_hooks.checkpoint: SafeCheckpointHook in place of '
            'CheckpointHook, with the same arguments (it writes a checkpoint '
            'before it removes an old one, and --resume continues this work '
            'dir\'s run whatever load_from says)',
            logger='current')
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = build_config(args)
    check_train_config(cfg)
    prepare_cpu_distributed(cfg)
    with trusted_checkpoints(config_trusts_checkpoints(cfg)):
        runner = Runner.from_cfg(cfg)
        runner.train()
    if args.test:
        # every rank waits for the first one to finish writing the
        # checkpoint it is about to load
        barrier()
        checkpoint = saved_checkpoint(runner)
        # `runner` stays referenced until main() returns, its model and
        # optimizer state kept in memory during the test: collected as
        # garbage, its data loader's persistent workers lose their queues
        # before they are told to stop, and each join waits out its 5 s
        # timeout (measured: 10 s for two workers)
        record = run_test(
            build_test_config(args.config, checkpoint,
                              work_dir=cfg.work_dir, launcher=args.launcher,
                              cfg_options=args.cfg_options),
            args.config, checkpoint)
        if record is not None:
            print(format_test_report(record))


def saved_checkpoint(runner: Runner) -> str:
    """The checkpoint that ``runner``'s CheckpointHook saved last.

    Args:
        runner: A Runner that has trained.

    Returns:
        Its path, relative to the working directory when it lies below it.

    Raises:
        FileNotFoundError: If the run saved none (no CheckpointHook in
            ``default_hooks``, or none of its steps saved).
    """
    path = runner.message_hub.get_info('last_ckpt')
    if path is None:
        raise FileNotFoundError(
            f'--test: this run saved no checkpoint in {runner.work_dir}; '
            'keep default_hooks.checkpoint to test after training')
    relative = osp.relpath(path)
    return path if relative.startswith(os.pardir) else relative


if __name__ == '__main__':
    main()
