"""Long-run check: does memory grow over thousands of fine-tuning steps?

Fine-tunes with HOSVD (the protocol's DeepLabV3 eps 0.8, 5 layers config by
default) for ``--iters`` iterations on the embedded dataset, with the
measured saved-tensor memory (ActivationMemoryHook) and the process RSS
recorded every iteration, and reports the least-squares slope of both after
warm-up and over the second half (MB per 1000 iterations); the JSON also
keeps both curves. The configs' MallocTrimHook is part of the run, as in
any fine-tuning. Not part of CI: 2,000 iterations take about 8 minutes on 2
cores.

Usage::

    python benchmarks/long_run.py [--config CONFIG] [--iters 2000]
        [--warmup 0.1] [--json benchmarks/results/long_run.json]
"""
import argparse
import json

# mmseg_hosvd first: with mmcv-lite, mmseg imports only after its compat fixes
import mmseg_hosvd  # noqa: F401  # isort: skip
from json_records import write_json
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmseg.registry import HOOKS

from mmseg_hosvd.engine.config_checks import check_train_config
from mmseg_hosvd.engine.hooks.activation_memory_hook import MEASURED_KEY

DEFAULT_CONFIG = ('configs/deeplabv3/'
                  'deeplabv3_r18-d8_hosvd-eps0.8-l5_shapes-target-128x128.py')


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux /proc)."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    raise RuntimeError('no VmRSS in /proc/self/status')


@HOOKS.register_module()
class RSSRecorderHook(Hook):
    """Records the process RSS after every training iteration.

    It runs before the checkpoint and logger hooks, so a checkpoint being
    serialised at the last iteration is not counted as growth.
    """

    priority = 'VERY_HIGH'

    def __init__(self):
        self.values = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.values.append(rss_mb())


def slope_per_1000(values, warmup):
    """Least-squares slope (per 1000 iterations) after the warm-up part."""
    start = int(len(values) * warmup)
    ys = values[start:]
    xs = list(range(start, start + len(ys)))
    n = len(ys)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    cov = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    var = sum((x - mean_x)**2 for x in xs)
    return 1000 * cov / var


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--iters', type=int, default=2000)
    parser.add_argument('--warmup', type=float, default=0.1)
    parser.add_argument('--work-dir', default='work_dirs/long_run')
    parser.add_argument('--json', default=None)
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg.work_dir = args.work_dir
    cfg.train_cfg.max_iters = args.iters
    cfg.train_cfg.val_interval = args.iters
    cfg.default_hooks.checkpoint.interval = args.iters
    if args.iters < 2:
        raise SystemExit(f'--iters must be at least 2, got {args.iters}')
    # warm-up as in the config, but at most 5% of a short run
    warmup = min(cfg.param_scheduler[0].end, max(1, args.iters // 20))
    cfg.param_scheduler[0].end = warmup
    cfg.param_scheduler[-1].begin = warmup
    cfg.param_scheduler[-1].end = args.iters
    cfg.param_scheduler[-1].T_max = args.iters - warmup
    cfg.custom_hooks = list(cfg.custom_hooks) + [dict(type='RSSRecorderHook')]
    check_train_config(cfg)
    runner = Runner.from_cfg(cfg)
    runner.train()
    rss = next(h for h in runner.hooks
               if isinstance(h, RSSRecorderHook)).values
    measured = list(runner.message_hub.get_scalar(MEASURED_KEY).data[0])
    result = dict(
        config=args.config,
        iterations=len(rss),
        measured_mb_first=measured[0],
        measured_mb_last=measured[-1],
        measured_slope_mb_per_1000=slope_per_1000(measured, args.warmup),
        rss_mb_first=rss[0],
        rss_mb_last=rss[-1],
        rss_slope_mb_per_1000=slope_per_1000(rss, args.warmup),
        rss_slope_second_half_mb_per_1000=slope_per_1000(rss, 0.5))
    print(json.dumps(result, indent=2))
    result.update(rss_mb=rss, measured_mb=measured)
    if args.json:
        write_json(args.json, result)


if __name__ == '__main__':
    main()
