"""The main job on the embedded default, end to end.

Generates the two-domain dataset if absent, pretrains the model on the source
domain if no pretrained checkpoint exists, calibrates its classifier on the
target domain, fine-tunes the last layers with HOSVD (eps 0.8, 5 layers by
default), tests it and prints mIoU, mAcc and activation memory. A second run
reuses everything that exists. After the first logged steps of each
training stage it prints the time left, per stage and in total, scaled from
the step times measured so far.

Usage::

    python tools/demo.py [--model deeplabv3] [--method hosvd-eps0.8]
        [--layers 5] [--force]
"""
import argparse
import os.path as osp
import time
from typing import List

from mmengine.config import Config

import mmseg_hosvd  # noqa: F401
from mmseg_hosvd.protocol.config_table import protocol_tags
from mmseg_hosvd.protocol.matrix import (
    DATA_ROOT,
    MODEL_CONFIGS,
    config_path,
    ensure_dataset,
    final_checkpoint,
    stale_reason,
)
from mmseg_hosvd.protocol.reporting import format_test_report
from mmseg_hosvd.protocol.runs import ensure_trained, ensure_trained_and_tested
from mmseg_hosvd.protocol.time_left import ProgressLog, Stage, TimeLeft

#: Per stage, in reference steps (one full training step of
#: DeepLabV3-R18-d8, batch 8, 128 x 128, everything trainable): one of its
#: steps, the start-up of its process, and what follows its last step (the
#: pretraining's validation, the test that the other stages run in the same
#: process, checkpoints). Measured in one `make demo` run with the default
#: model and method on a 2-core machine of the project's kind where the
#: reference step took 1.32 s (pretraining on 64 x 64 crops); for other
#: models and methods each stage's estimate is corrected by its own step
#: times once it runs.
STAGE_COSTS = {
    'pretrain': (0.31, 5., 6.),
    'calibrate': (0.33, 4., 6.),
    'fine-tune': (0.4, 6.5, 7.),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', default='deeplabv3',
                        choices=sorted(MODEL_CONFIGS))
    parser.add_argument('--method', default='hosvd-eps0.8',
                        choices=list(protocol_tags()))
    parser.add_argument('--layers', type=int, default=5, choices=[5, 10])
    parser.add_argument('--force', action='store_true',
                        help='fine-tune and test again even if done')
    return parser.parse_args(argv)


def plan(pretrained: str, calibrated: str, finetuned: str,
         force: bool) -> List[Stage]:
    """The stages still to run: those whose final checkpoint is missing or
    stale (see :func:`~mmseg_hosvd.protocol.matrix.stale_reason`), and every
    stage after one that runs (it starts from that stage's new checkpoint).
    Calibration and fine-tuning test their checkpoint in their training
    process.
    """
    stages = []
    for name, config, again in (('pretrain', pretrained, False),
                                ('calibrate', calibrated, False),
                                ('fine-tune', finetuned, force)):
        checkpoint = final_checkpoint(config)
        if (not stages and not again and osp.isfile(checkpoint)
                and stale_reason(config, checkpoint) is None):
            continue
        stages.append(Stage(name, Config.fromfile(config).train_cfg.max_iters,
                            *STAGE_COSTS[name]))
    return stages


def main(argv=None):
    args = parse_args(argv)
    start = time.time()

    def write(message):
        print(f'[{time.time() - start:6.0f} s] {message}', flush=True)

    pretrained = config_path(args.model, 'pretrain')
    calibrated = config_path(args.model, 'calib')
    finetuned = config_path(args.model, 'finetune', args.method, args.layers)
    ensure_dataset(DATA_ROOT, write)
    log = ProgressLog(
        TimeLeft(plan(pretrained, calibrated, finetuned, args.force)), write)
    log.stage('pretrain')
    ensure_trained(pretrained, log)
    log.stage('calibrate')
    calib_record = ensure_trained_and_tested(calibrated, log)
    log.stage('fine-tune')
    record = ensure_trained_and_tested(finetuned, log, force=args.force)
    log.stage(None)
    print(format_test_report(record))
    print(f"before fine-tuning (calibrated classifier only): mIoU "
          f"{calib_record['metrics']['mIoU']:.2f}  mAcc "
          f"{calib_record['metrics']['mAcc']:.2f}")
    print(f'total time: {time.time() - start:.0f} s')


if __name__ == '__main__':
    main()
