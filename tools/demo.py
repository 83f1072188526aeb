"""The main job on the embedded default, end to end.

Generates the two-domain dataset if absent, pretrains the model on the source
domain if no pretrained checkpoint exists, calibrates its classifier on the
target domain, fine-tunes the last layers with HOSVD (eps 0.8, 5 layers by
default), tests it and prints mIoU, mAcc and activation memory. A second run
reuses everything that exists.

Usage::

    python tools/demo.py [--model deeplabv3] [--method hosvd-eps0.8]
        [--layers 5] [--data-root data/synthetic_shapes] [--force]
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import mmseg_hosvd  # noqa: E402,F401
from mmseg_hosvd.methods import protocol_tags  # noqa: E402
from mmseg_hosvd.protocol import (  # noqa: E402
    MODEL_CONFIGS,
    config_path,
    ensure_dataset,
    ensure_tested,
    ensure_trained,
)
from mmseg_hosvd.reporting import format_test_report  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', default='deeplabv3',
                        choices=sorted(MODEL_CONFIGS))
    parser.add_argument('--method', default='hosvd-eps0.8',
                        choices=list(protocol_tags()))
    parser.add_argument('--layers', type=int, default=5, choices=[5, 10])
    parser.add_argument('--data-root', default='data/synthetic_shapes')
    parser.add_argument('--force', action='store_true',
                        help='fine-tune and test again even if done')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    start = time.time()

    def log(message):
        print(f'[{time.time() - start:6.0f} s] {message}', flush=True)

    ensure_dataset(args.data_root, log)
    pretrained = config_path(args.model, 'pretrain')
    calibrated = config_path(args.model, 'calib')
    finetuned = config_path(args.model, 'finetune', args.method, args.layers)
    ensure_trained(pretrained, log)
    calib_record = ensure_tested(calibrated, ensure_trained(calibrated, log),
                                 log)
    checkpoint = ensure_trained(finetuned, log, force=args.force)
    record = ensure_tested(finetuned, checkpoint, log, force=args.force)
    print(format_test_report(record))
    print(f"before fine-tuning (calibrated classifier only): mIoU "
          f"{calib_record['metrics']['mIoU']:.2f}  mAcc "
          f"{calib_record['metrics']['mAcc']:.2f}")
    print(f'total time: {time.time() - start:.0f} s')


if __name__ == '__main__':
    main()
