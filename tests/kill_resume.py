"""Kill a training run with SIGKILL at random points, resume it each time.

Used by ``tests/engine/test_faults_checkpoints.py`` (a few kills) and, from
the command line, for the 20-kill soak of docs (a 60-iteration fine-tuning
of DeepLabV3 with a checkpoint every iteration)::

    python -m tests.kill_resume --kills 20 --iters 60

Each round starts ``tools/train.py CONFIG --resume`` (the first without
``--resume``) and kills it, at random, either just after a checkpoint write
has begun (a temporary file is there) or at a random time of up to
``spread`` seconds after the run saved a checkpoint; the last round runs to
the end. The final weights are then compared with an
uninterrupted run's.
"""
import argparse
import os
import os.path as osp
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, NamedTuple, Tuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def temporaries(directory: str) -> List[str]:
    """The hidden temporary files of killed writes in ``directory``."""
    return sorted(name for name in os.listdir(directory)
                  if name.startswith('.') and name.endswith('.tmp'))


def _pointer(work_dir: str) -> str:
    path = osp.join(work_dir, 'last_checkpoint')
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ''


def train(config: str, work_dir: str, resume: bool, env: dict,
          timeout: float = 900) -> subprocess.Popen:
    """Starts ``tools/train.py`` on ``config`` (output to a log file)."""
    command = [sys.executable, 'tools/train.py', config,
               '--work-dir', work_dir] + (['--resume'] if resume else [])
    os.makedirs(work_dir, exist_ok=True)
    log = open(osp.join(work_dir, 'rounds.log'), 'a')
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def run_with_kills(config: str, work_dir: str, kills: int, seed: int,
                   spread: float, env: dict = None,
                   deadline: float = 1800) -> Dict[str, object]:
    """Trains ``config`` in ``work_dir`` through ``kills`` SIGKILLs.

    Args:
        config: A config file whose run saves a checkpoint every iteration.
        work_dir: Its work dir.
        kills: How many times to kill it.
        seed: Seed of the random kill times.
        spread: Upper bound of the random wait after a fresh checkpoint,
            in seconds (about two iterations).
        env: The processes' environment.
        deadline: Seconds the whole thing may take.

    Returns:
        ``kills`` (what was killed: at which pointer, whether a write was
        under way), ``returncode`` of the last round and ``rounds``.

    Raises:
        RuntimeError: When a round ends on its own before it is killed, or
            the deadline passes.
    """
    env = dict(os.environ if env is None else env)
    env.setdefault('PYTHONPATH', ROOT)
    draw = random.Random(seed)
    start = time.time()
    record = []
    for round_ in range(kills + 1):
        process = train(config, work_dir, resume=round_ > 0, env=env)
        if round_ == kills:
            returncode = process.wait(timeout=deadline)
            return dict(kills=record, returncode=returncode,
                        rounds=kills + 1)
        seen = _pointer(work_dir)
        inside_a_write = draw.random() < 0.5
        while (not temporaries(work_dir) if inside_a_write else
               _pointer(work_dir) == seen):
            if process.poll() is not None:
                raise RuntimeError(
                    f'round {round_} ended with {process.returncode} before '
                    f'it was killed; see {work_dir}/rounds.log')
            if time.time() - start > deadline:
                process.kill()
                raise RuntimeError('the kill rounds ran out of time')
            time.sleep(0.005)
        time.sleep(draw.uniform(0, 0.02 if inside_a_write else spread))
        writing = bool(temporaries(work_dir))
        process.send_signal(signal.SIGKILL)
        process.wait()
        record.append(dict(after=_pointer(work_dir), writing=writing))
    raise AssertionError('unreachable')


class Run(NamedTuple):
    """A dumped config and its work dir."""
    config: str
    work_dir: str


def fine_tuning_runs(data_root: str, base: str, iters: int,
                     model: str = 'deeplabv3',
                     warm_start: bool = False) -> Tuple[Run, Run]:
    """Two identical runs of ``model``'s shipped HOSVD fine-tuning config,
    shrunk to ``iters`` iterations at 64 px with a checkpoint every
    iteration, from a checkpoint trained here (``load_from``).

    Args:
        data_root: A generated dataset (its target domain is used).
        base: Directory for the configs and work dirs.
        iters: Training iterations.
        model: Protocol model name.
        warm_start: HOSVD's ``warm_start``. A resumed run starts its solver
            cold, so with True its ranks may differ from an uninterrupted
            run's by a vector or two, and the weights by as much; with
            False every decomposition is a function of its input and seed.

    Returns:
        The uninterrupted run and the one to kill.
    """
    from mmengine.runner import Runner

    from mmseg_hosvd.protocol.matrix import config_path
    from tests.helpers import CONFIGS, tiny_runner_config
    start = tiny_runner_config(model, osp.join(base, 'start'), data_root,
                               hooks=[], max_iters=2)
    Runner.from_cfg(start).train()
    shipped = config_path(model, 'finetune', 'hosvd-eps0.8', 5,
                          root=CONFIGS)
    runs = []
    for name in ('straight', 'killed'):
        cfg = tiny_runner_config(model, osp.join(base, name), data_root,
                                 max_iters=iters, config=shipped)
        cfg.load_from = osp.join(base, 'start', 'iter_2.pth')
        for hook in cfg.custom_hooks:
            if hook['type'] == 'CompressConvHook':
                hook['warm_start'] = warm_start
        cfg.default_hooks.checkpoint.interval = 1
        cfg.default_hooks.logger.interval = 10
        cfg.train_cfg.val_interval = iters + 1
        path = osp.join(base, f'{name}.py')
        cfg.dump(path)
        runs.append(Run(path, cfg.work_dir))
    return runs[0], runs[1]


def final_weights(run: Run, iters: int) -> dict:
    """The state dict of ``run``'s last checkpoint."""
    import torch
    return torch.load(osp.join(run.work_dir, f'iter_{iters}.pth'),
                      map_location='cpu', weights_only=False)['state_dict']


def difference(resumed: dict, expected: dict, start: dict) -> dict:
    """How far ``resumed`` is from ``expected``: the largest entry, and
    the norm relative to how far training moved ``expected`` from
    ``start``."""
    largest, gap, update = 0., 0., 0.
    for key, value in expected.items():
        if not value.is_floating_point():
            continue
        delta = resumed[key].double() - value.double()
        largest = max(largest, float(delta.abs().max()))
        gap += float(delta.pow(2).sum())
        update += float((value.double() - start[key].double()).pow(2).sum())
    return dict(largest=largest, of_update=(gap / update)**0.5)


def main(argv=None):
    """The soak: ``--kills`` kills of a shrunk DeepLabV3 HOSVD fine-tuning,
    compared with an uninterrupted run; prints what happened."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--kills', type=int, default=20)
    parser.add_argument('--iters', type=int, default=60)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--spread', type=float, default=1.0)
    parser.add_argument('--warm-start', action='store_true',
                        help="HOSVD's warm start (resumed runs start cold)")
    parser.add_argument('--keep', help='work in this directory and keep it')
    args = parser.parse_args(argv)
    sys.path.insert(0, ROOT)
    from mmseg.utils import register_all_modules

    import mmseg_hosvd  # noqa: F401  (registrations before mmseg)
    from mmseg_hosvd.datasets import generate
    from tests.helpers import TINY_SIZES
    register_all_modules(init_default_scope=True)
    base = args.keep or tempfile.mkdtemp(prefix='kill_resume_')
    try:
        generate(osp.join(base, 'data'), TINY_SIZES, image_size=64, seed=1)
        straight, killed = fine_tuning_runs(osp.join(base, 'data'), base,
                                            args.iters,
                                            warm_start=args.warm_start)
        done = train(straight.config, straight.work_dir, False, dict(
            os.environ, PYTHONPATH=ROOT)).wait()
        began = time.time()
        result = run_with_kills(killed.config, killed.work_dir, args.kills,
                                args.seed, args.spread)
        elapsed = time.time() - began
        import torch
        start = torch.load(osp.join(base, 'start', 'iter_2.pth'),
                           weights_only=False)['state_dict']
        gap = difference(final_weights(killed, args.iters),
                         final_weights(straight, args.iters), start)
        left = temporaries(killed.work_dir)
        writing = sum(k['writing'] for k in result['kills'])
        print(f'{args.kills} kills ({writing} during a checkpoint write), '
              f'last round exit {result["returncode"]}, uninterrupted run '
              f'exit {done}, {elapsed:.0f} s with the kills')
        print(f'difference to the uninterrupted run: largest entry '
              f'{gap["largest"]:.3g}, norm {gap["of_update"]:.3g} of the '
              'norm of its update')
        print(f'temporary files left: {left}')
        return 0 if result['returncode'] == 0 and not left else 1
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
