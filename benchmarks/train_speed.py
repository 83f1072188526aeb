"""Training step time of each model and method, as ratios to vanilla.

One step is forward, backward and an SGD step of the fine-tuning set-up
(CompressConvHook's freezing and conversion, frozen norm statistics). The
methods of one model and layer count are built first, then timed round by
round, one step of each in turn after warm-up rounds, so that a change in
the machine's speed reaches them alike: the median step time is reported
with the ratio to vanilla, the median of the per-round ratios. The steps
cycle through ``--batches`` distinct batches, so state carried from one
step to the next (the Ritz warm start) meets a new input every step, as in
training. ``hosvd_authors`` is HOSVD computed
the original authors' way (full SVD of every unfolding, no sharing), as a
reference point.

By default the weights and the batch are random. With ``--from-protocol``
each model starts from the protocol's calibrated checkpoint (the starting
point of its fine-tuning runs; run ``tools/run_protocol.py`` first) and the
batches are the first images of the generated target domain: the
ranks that HOSVD-eps finds then are those of real fine-tuning, much lower
than on random activations.

Usage::

    python benchmarks/train_speed.py [--models deeplabv3 pspnet]
        [--methods vanilla hosvd hosvd_authors] [--layers 5] [--iters 10]
        [--eps 0.8] [--batch 8] [--batches 4] [--size 128] [--solver auto]
        [--lean]
        [--cold-start] [--from-protocol] [--json PATH]
"""
import argparse
import statistics
import time

# mmseg_hosvd first: with mmcv-lite, mmseg imports only after its compat fixes
import mmseg_hosvd  # noqa: F401  # isort: skip
import torch
import torch.nn.functional as F
from fine_tuned_model import build_fine_tuned_model
from json_records import write_json
from protocol_inputs import add_input_arguments, lean_thresholds, model_inputs
from reference_hosvd import AuthorsHOSVDConv2d

from mmseg_hosvd.methods import method_names
from mmseg_hosvd.models import set_norm_eval_
from mmseg_hosvd.ops import SOLVERS, hosvd, subspace_hosvd
from mmseg_hosvd.protocol.matrix import MODEL_CONFIGS
from mmseg_hosvd.selection.surgery import convert_convs_

#: The authors' way of computing HOSVD (four full SVDs per layer and
#: step), measured beside the registered methods.
AUTHORS = 'hosvd_authors'


def build(model_name, method, layers, eps, x, solver='auto',
          checkpoint=None, warm_start=True, lean=False):
    """The model of ``model_name`` set up for fine-tuning with ``method``
    (with its lean region if ``lean``, at the thresholds of its lean
    config).

    Returns:
        ``(model, plan)``; subspace ranks are fixed on the batch ``x``.
    """
    hook_method = 'vanilla' if method == AUTHORS else method
    model, plan, session, _ = build_fine_tuned_model(
        model_name, hook_method, layers, checkpoint=checkpoint,
        options=dict(eps=eps, solver=solver, warm_start=warm_start),
        lean=lean, lean_eps=lean_thresholds(model_name) if lean else None)
    if method == AUTHORS:
        convert_convs_(model, plan['compressed'],
                       lambda name, conv: AuthorsHOSVDConv2d.from_conv(
                           conv, eps=eps))
    model.train()
    set_norm_eval_(model)
    session.calibrate(model, x)
    return model, plan


def compression_ms(model, names, x, eps, ranks):
    """Milliseconds per step spent decomposing the fine-tuned inputs.

    The inputs of the compressed convolutions are captured in one forward;
    each distinct input (several convolutions may read one) is then
    decomposed as a training step would: HOSVD-eps with the full Gram
    eigendecomposition ('eigh') and with the default solver ('auto'), and
    one warm-started subspace step at the ranks of the first convolution
    of ``names`` that reads it ('subspace'; ``ranks`` by name).
    """
    captured = {}
    handles = [
        model.get_submodule(n).register_forward_pre_hook(
            lambda m, a, n=n: captured.setdefault(n, a[0]))
        for n in names
    ]
    with torch.no_grad():
        model._forward(x)
    for handle in handles:
        handle.remove()
    distinct = {}
    for name in names:
        distinct.setdefault(id(captured[name]),
                            (captured[name].detach(), ranks[name]))
    inputs = [tensor for tensor, _ in distinct.values()]
    ranks = [rank for _, rank in distinct.values()]
    warm = {i: subspace_hosvd(t, ranks[i])[1] for i, t in enumerate(inputs)}

    def eps_rule(solver):
        def run():
            for t in inputs:
                hosvd(t, eps=eps, solver=solver)
        return run

    def subspace():
        for i, t in enumerate(inputs):
            subspace_hosvd(t, ranks[i], warm[i])

    result = {}
    for name, fn in (('eigh', eps_rule('eigh')), ('auto', eps_rule('auto')),
                     ('subspace', subspace)):
        fn()
        start = time.perf_counter()
        for _ in range(5):
            fn()
        result[name] = (time.perf_counter() - start) / 5 * 1000
    return result


class TrainingStep:
    """One timed training step of a model set up by :func:`build`.

    ``x`` and ``labels`` hold ``batches`` batches, cycled through step by
    step: a method that carries state from one step to the next (the Ritz
    solver's warm start) then sees a new input every step, as in training.
    """

    def __init__(self, model, x, labels, batches=1):
        self.model = model
        self.x_parts, self.label_parts = x.chunk(batches), labels.chunk(
            batches)
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9)
        self.count = 0

    def __call__(self):
        """Runs the next step; returns its seconds."""
        index = self.count % len(self.x_parts)
        x, labels = self.x_parts[index], self.label_parts[index]
        self.count += 1
        self.model.train()
        set_norm_eval_(self.model)
        start = time.perf_counter()
        logits = self.model._forward(x)
        logits = F.interpolate(logits, size=x.shape[-2:], mode='bilinear',
                               align_corners=False)
        loss = F.cross_entropy(logits, labels, ignore_index=255)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return time.perf_counter() - start


def interleaved_times(steps, iters, warmup=3):
    """Per-step seconds of every method, measured round by round.

    Each round runs one step of every method in turn, so a change in the
    machine's speed (other tenants, clock) reaches all methods alike; the
    ratio of a method to the first one is then taken within each round.

    Args:
        steps: ``{method: TrainingStep}``, the baseline first.
        iters: Timed rounds.
        warmup: Untimed rounds before them.

    Returns:
        ``{method: [seconds per timed round]}``.
    """
    times = {method: [] for method in steps}
    for round_ in range(warmup + iters):
        for method, step in steps.items():
            seconds = step()
            if round_ >= warmup:
                times[method].append(seconds)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+', choices=sorted(MODEL_CONFIGS),
                        default=['deeplabv3', 'pspnet'])
    parser.add_argument('--methods', nargs='+',
                        choices=method_names() + [AUTHORS],
                        default=['vanilla', 'hosvd', 'hosvd_authors'])
    parser.add_argument('--layers', nargs='+', type=int, default=[5])
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--eps', type=float, default=0.8)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--size', type=int, default=128)
    parser.add_argument('--batches', type=int, default=4,
                        help='distinct batches the timed steps cycle '
                        'through (state carried between steps, such as '
                        'the warm start, then meets new inputs)')
    parser.add_argument('--solver', choices=list(SOLVERS),
                        default='auto',
                        help='HOSVD-eps solver of the hosvd methods')
    parser.add_argument('--lean', action='store_true',
                        help='also time the lean variant of each '
                        'compressing method')
    parser.add_argument('--cold-start', action='store_true',
                        help='the hosvd methods without the Ritz warm '
                        'start (warm_start=False)')
    add_input_arguments(parser, device=False)
    args = parser.parse_args(argv)
    if args.batches < 1:
        parser.error(f'--batches must be >= 1, got {args.batches}')
    methods = ['vanilla'] + [m for m in args.methods if m != 'vanilla']
    variants = [(m, False) for m in methods] + [
        (m, True) for m in methods if args.lean and m not in ('vanilla',
                                                              AUTHORS)]
    records = []
    print(f"{'model':>12} {'layers':>6} {'method':>16} {'step (s)':>9} "
          f"{'/ vanilla':>9} {'overhead':>9}")
    for model_name in args.models:
        checkpoint, xs, labels = model_inputs(
            model_name, args.from_protocol, args.batch * args.batches,
            args.size)
        x = xs[:args.batch]
        for layers in args.layers:
            built = {}
            for method, lean in variants:
                torch.manual_seed(0)
                built[method, lean] = build(model_name, method, layers,
                                            args.eps, x, args.solver,
                                            checkpoint, not args.cold_start,
                                            lean)
            times = interleaved_times(
                {key: TrainingStep(model, xs, labels, args.batches)
                 for key, (model, _) in built.items()}, args.iters)
            vanilla = times['vanilla', False]
            base = statistics.median(vanilla)
            for (method, lean), (model, plan) in built.items():
                median = statistics.median(times[method, lean])
                ratio = statistics.median(
                    t / b for t, b in zip(times[method, lean], vanilla,
                                          strict=True))
                record = dict(model=model_name, method=method, lean=lean,
                              layers=layers, eps=args.eps,
                              solver=plan.options.get('solver'),
                              warm_start=plan.options.get('warm_start'),
                              lean_eps=plan['lean_eps'],
                              weights='protocol' if checkpoint else 'random',
                              step_time_s=median, ratio_to_vanilla=ratio,
                              overhead_s=median - base)
                name = method + (' lean' if lean else '')
                line = (f'{model_name:>12} {layers:>6} {name:>16} '
                        f'{median:9.3f} {ratio:8.2f}x {median - base:8.3f}s')
                stored = {name: getattr(model.get_submodule(name),
                                        'last_stored', None)
                          for name in plan['compressed']}
                ranks = {name: s.ranks for name, s in stored.items()
                         if s is not None and s.ranks is not None
                         and not s.shared}
                if ranks:
                    record['ranks'] = ranks
                    line += f"  ranks {list(ranks.values())}"
                if method == 'hosvd_subspace':
                    cost = compression_ms(
                        model, plan['compressed'], x, args.eps, {
                            n: model.get_submodule(n).ranks
                            for n in plan['compressed']
                        })
                    record.update(compression_ms_eigh=cost['eigh'],
                                  compression_ms_auto=cost['auto'],
                                  compression_ms_subspace=cost['subspace'])
                    line += (f"  compression per step: eigh "
                             f"{cost['eigh']:.1f} ms, auto "
                             f"{cost['auto']:.1f} ms, subspace "
                             f"{cost['subspace']:.1f} ms")
                records.append(record)
                print(line, flush=True)
    if args.json:
        write_json(args.json, records)


if __name__ == '__main__':
    main()
