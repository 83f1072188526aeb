"""Weight-gradient error of compressed settings, per fine-tuned layer.

For a protocol model set up to fine-tune its last N layers (vanilla, so
that every gradient is exact), each batch runs one forward and backward of
the whole model; each fine-tuned layer's input and output gradient are kept
(``mmseg_hosvd.planning.capture_layer_gradients``), and every candidate
setting's weight gradient is computed from them through the module that
training would use. It prints, per layer and candidate, the relative error
``||dW - dW_hat|| / ||dW||`` (mean over the batches) and the bytes stored
for backward; per candidate, their sums; the allocation of one candidate
per layer with the least error (``--criterion``: the layers' summed
relative errors, or the whole gradient's squared error) within the bytes
of uniform HOSVD eps 0.8, itself always a candidate
(``mmseg_hosvd.planning.allocate``), with the whole gradient's relative
error of it and of eps 0.8;
and what the measurement costs against one training step of the same
model, timed in the same run (with ``--unshared``, also against measuring
every candidate on its own, its exact gradient and solves not shared with
the others, checked to give the same records). Layers that read one
input (the ASPP branches of DeepLabV3) take one setting in the allocation
and count its bytes once, as training stores it; the per-setting sums
count it per layer.

Usage::

    python benchmarks/gradient_error.py [--model deeplabv3] [--layers 5]
        [--from-protocol] [--batches 2] [--batch 8] [--size 128]
        [--eps 0.5 0.6 0.7 0.8 0.9 0.95] [--bits 2 4 8] [--keep-batch]
        [--spatial-eps 0.6 0.7 0.8 0.9 0.95] [--criterion layers]
        [--unshared] [--json PATH]
"""
import argparse
import dataclasses
import statistics
import time

# mmseg_hosvd first: with mmcv-lite, mmseg imports only after its compat fixes
import mmseg_hosvd  # noqa: F401  # isort: skip
import torch
from fine_tuned_model import build_fine_tuned_model
from json_records import write_json
from mmengine.optim import build_optim_wrapper
from protocol_inputs import protocol_checkpoint, raw_batch

from mmseg_hosvd.methods.options import ALLOCATION_CRITERIA
from mmseg_hosvd.models import set_norm_eval_
from mmseg_hosvd.ops.quantized_codes import BITS
from mmseg_hosvd.planning import (
    Candidate,
    allocate,
    candidate_error,
    capture_layer_gradients,
    criterion_errors,
    gradient_errors,
    merge_captures,
    uniform_bytes,
    whole_relative_error,
)
from mmseg_hosvd.protocol.matrix import MODEL_CONFIGS
from mmseg_hosvd.selection.model_trace import shared_input_groups, trace_model

#: The uniform setting whose stored bytes are the allocation's budget.
REFERENCE = Candidate('hosvd', dict(eps=0.8))
KB = 1024


def candidates(eps_values, bits_values, keep_batch=False,
               spatial_values=()):
    """HOSVD at each eps (eps 0.8 always among them, so that the
    allocation can match the uniform setting), with ``keep_batch`` also
    with the batch mode kept whole at each eps, with ``spatial_values``
    also each eps with each other spatial eps (the batch mode kept with
    ``keep_batch``), then quantized at each bit width."""
    eps_values = sorted(set(eps_values) | {REFERENCE.options['eps']})
    kept = [Candidate('hosvd', dict(eps=e, keep_batch=True))
            for e in eps_values] if keep_batch else []
    pairs = [
        Candidate('hosvd', dict(eps=e, spatial_eps=s, keep_batch=keep_batch))
        for e in eps_values for s in sorted(set(spatial_values)) if s != e
    ]
    return ([Candidate('hosvd', dict(eps=e)) for e in eps_values] + kept +
            pairs +
            [Candidate('quantized', dict(bits=b)) for b in bits_values])


def errors_of(picked):
    """The summed relative error and the whole gradient's relative error
    of one candidate per layer."""
    return (sum(e.error for e in picked),
            whole_relative_error((e.error, e.gradient_norm) for e in picked))


def loss_of(model, data):
    """The segmentor's training loss on a loader batch (preprocessed)."""
    batch = model.data_preprocessor(data, True)
    loss, _ = model.parse_losses(model._run_forward(batch, mode='loss'))
    return loss


def step_seconds(model, batches, optim_wrapper, repeats=3):
    """Median time of one full training step (forward, backward, SGD)."""
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        optim_wrapper.update_params(loss_of(model, batches[i % len(batches)]))
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def unshared_seconds(captured, settings, shared_errors):
    """Seconds to measure every candidate on its own (its exact gradient
    and every solve its own, as before the sharing), after checking that
    this gives the same records as the shared measurement."""
    start = time.perf_counter()
    alone = [candidate_error(record, candidate)
             for record in captured.values() for candidate in settings]
    seconds = time.perf_counter() - start
    if alone != shared_errors:
        raise RuntimeError('the candidates measured on their own differ '
                           'from the shared measurement')
    return seconds


def measure(args):
    """The records of one run (see the module docstring)."""
    torch.manual_seed(0)
    model, plan, _, cfg = build_fine_tuned_model(
        args.model, 'vanilla', args.layers,
        checkpoint=protocol_checkpoint(args.model)
        if args.from_protocol else None, size=args.size)
    model.train()
    set_norm_eval_(model)
    num_classes = cfg.model.decode_head.num_classes
    batches = [raw_batch(args.model, args.from_protocol, args.batch,
                         args.size, num_classes, start=i * args.batch)
               for i in range(args.batches)]
    names = plan['compressed']
    start = time.perf_counter()
    captured = merge_captures(*[
        capture_layer_gradients(model, names, lambda d=data: loss_of(model, d))
        for data in batches])
    capture_s = time.perf_counter() - start
    settings = candidates(args.eps, args.bits, args.keep_batch,
                          args.spatial_eps)
    start = time.perf_counter()
    errors = gradient_errors(captured, settings)
    candidates_s = time.perf_counter() - start
    unshared_s = unshared_seconds(captured, settings, errors) \
        if args.unshared else None
    reference = [e for e in errors if e.tag == REFERENCE.tag]
    groups = shared_input_groups(trace_model(model), names)
    budget = uniform_bytes(errors, REFERENCE.tag, groups)
    allocation = allocate(criterion_errors(errors, args.criterion), budget,
                          groups=groups)
    by_key = {(e.layer, e.tag): e for e in errors}
    reference_error, reference_whole = errors_of(reference)
    allocation_error, allocation_whole = errors_of(
        [by_key[name, c.tag] for name, c in allocation.choices.items()])
    model.zero_grad()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    step_s = step_seconds(model, batches, optim_wrapper)
    return dict(
        model=args.model, layers=args.layers, batch=args.batch,
        size=args.size, batches=args.batches,
        weights='trained' if args.from_protocol else 'random',
        threads=torch.get_num_threads(),
        errors=[dataclasses.asdict(e) for e in errors],
        shared_inputs=groups,
        reference=dict(tag=REFERENCE.tag, error=reference_error,
                       whole_error=reference_whole, stored_bytes=budget),
        allocation=dict(choices={k: v.tag
                                 for k, v in allocation.choices.items()},
                        criterion=args.criterion, error=allocation_error,
                        whole_error=allocation_whole,
                        stored_bytes=allocation.stored_bytes),
        capture_s=capture_s, candidates_s=candidates_s,
        unshared_s=unshared_s, step_s=step_s)


def report(record):
    """The printed table of a record."""
    lines = [f"{record['model']}, {record['layers']} layers, batch "
             f"{record['batch']}, {record['size']} px, {record['batches']} "
             f"batch(es), {record['weights']} weights, "
             f"{record['threads']} thread(s)", '',
             '| layer | setting | gradient error | stored KB |',
             '|---|---|---|---|']
    totals = {}
    for e in record['errors']:
        lines.append(f"| {e['layer']} | {e['tag']} | {e['error']:.4f} | "
                     f"{e['stored_bytes'] / KB:.1f} |")
        total = totals.setdefault(e['tag'], [0.0, 0.0])
        total[0] += e['error']
        total[1] += e['stored_bytes']
    lines += ['', '| setting, every layer | summed error | stored KB |',
              '|---|---|---|']
    lines += [f'| {tag} | {error:.4f} | {stored / KB:.1f} |'
              for tag, (error, stored) in totals.items()]
    ref, alloc = record['reference'], record['allocation']
    lines += ['', f"allocation (criterion {alloc['criterion']}) within "
              f"{ref['tag']}'s {ref['stored_bytes'] / KB:.1f} KB: summed "
              f"error {alloc['error']:.4f}, whole-gradient error "
              f"{alloc['whole_error']:.4f} (uniform {ref['tag']}: "
              f"{ref['error']:.4f}, {ref['whole_error']:.4f}), "
              f"{alloc['stored_bytes'] / KB:.1f} KB"]
    lines += [f'  {layer}: {tag}' for layer, tag in alloc['choices'].items()]
    measure_s = record['capture_s'] + record['candidates_s']
    lines += ['', f"measurement {measure_s:.2f} s (capture "
              f"{record['capture_s']:.2f} s, candidates "
              f"{record['candidates_s']:.2f} s) = "
              f"{measure_s / record['step_s']:.1f} training steps of "
              f"{record['step_s']:.2f} s (same run)"]
    if record.get('unshared_s') is not None:
        lines.append(f"candidates on their own, nothing shared: "
                     f"{record['unshared_s']:.2f} s, "
                     f"{record['unshared_s'] / record['candidates_s']:.2f}x "
                     'the shared measurement (same records, same run)')
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', default='deeplabv3',
                        choices=sorted(MODEL_CONFIGS))
    parser.add_argument('--layers', type=int, default=5)
    parser.add_argument('--from-protocol', action='store_true',
                        help="the protocol's calibrated checkpoint and "
                        'target images (else random weights and inputs)')
    parser.add_argument('--batches', type=int, default=2)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--size', type=int, default=128)
    parser.add_argument('--eps', type=float, nargs='+',
                        default=[0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
    parser.add_argument('--bits', type=int, nargs='*', default=list(BITS),
                        choices=BITS)
    parser.add_argument('--keep-batch', action='store_true',
                        help='also HOSVD with the batch mode kept whole '
                        'at each eps')
    parser.add_argument('--spatial-eps', type=float, nargs='*', default=[],
                        help='also HOSVD with the spatial modes at each of '
                        'these eps, beside each --eps (the batch mode kept '
                        'with --keep-batch)')
    parser.add_argument('--criterion', default=ALLOCATION_CRITERIA[0],
                        choices=ALLOCATION_CRITERIA,
                        help="what the allocation minimises: 'layers', the "
                        "summed relative errors; 'whole', the squared error "
                        'of the whole gradient')
    parser.add_argument('--unshared', action='store_true',
                        help='also time every candidate on its own (no '
                        'exact gradient or solve shared) as the baseline '
                        'of the shared measurement')
    parser.add_argument('--json', help='also write the record here')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    record = measure(args)
    print(report(record))
    if args.json:
        write_json(args.json, record)
    return record


if __name__ == '__main__':
    main()
