"""Activation memory of one training forward, as ratios to vanilla.

For each model, method and layer count (and, with --lean, the lean variant)
the fine-tuning set-up is built (CompressConvHook, frozen norm statistics)
and one training forward runs from the input to the logits, loss excluded,
on a random batch. It reports the analytical memory of the fine-tuned
convolutions and the measured bytes that autograd saves (every distinct
storage, parameters and buffers excluded), and the measured ratio to vanilla
of the same model and layer count measured in the same run. On CUDA it also
reports ``torch.cuda.max_memory_allocated`` of forward + backward. With
``--by-module`` it also lists the measured bytes by the class of the module
that saved them (the innermost one running; ``<outside the model>`` for what
runs outside every module): what a lean region still keeps, and where.

By default the weights and the batch are random. With ``--from-protocol``
each model starts from the protocol's calibrated checkpoint and the batch is
the first images of the generated target domain (run
``tools/run_protocol.py`` first): the ranks are then those of fine-tuning.

Usage::

    python benchmarks/activation_memory.py [--models ...] [--methods ...]
        [--layers 5] [--lean] [--lean-norm-eps 0.8]
        [--lean-classifier-eps 0.99|whole] [--lean-bits 8] [--batch 8]
        [--size 128]
        [--by-module] [--from-protocol] [--json PATH]
"""
import argparse
import contextlib

# mmseg_hosvd first: with mmcv-lite, mmseg imports only after its compat fixes
import mmseg_hosvd  # noqa: F401  # isort: skip
import torch
from fine_tuned_model import build_fine_tuned_model
from json_records import write_json
from protocol_inputs import add_input_arguments, lean_thresholds, model_inputs

from mmseg_hosvd.methods import method_names
from mmseg_hosvd.models import set_norm_eval_
from mmseg_hosvd.protocol.matrix import MODEL_CONFIGS
from mmseg_hosvd.selection.conv_memory_counter import ConvMemoryCounter
from mmseg_hosvd.utils import RunningModule, SavedTensorMeter

MB = 2**20
#: Module classes listed per row with --by-module, largest first.
BY_MODULE_ROWS = 8


def measure(model_name, method, layers, lean, eps, lean_eps, x, device,
            checkpoint=None, lean_bits=None, by_module=False):
    """Analytical and measured MB (and CUDA peak) of one training forward,
    and with ``by_module`` the measured MB by module class
    (``by_module_mb``)."""
    torch.manual_seed(0)
    model, plan, session, _ = build_fine_tuned_model(
        model_name, method, layers, checkpoint=checkpoint,
        options=dict(eps=eps), lean=lean, lean_eps=lean_eps,
        lean_bits=lean_bits)
    model.to(device).train()
    set_norm_eval_(model)
    x = x.to(device)
    session.calibrate(model, x)
    counter = ConvMemoryCounter(model, plan['compressed'])
    if device.type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    running = RunningModule(model) if by_module else contextlib.nullcontext()
    with running, SavedTensorMeter.for_model(
            model, running.kind if by_module else None) as meter:
        logits = model._forward(x)
    logits.float().mean().backward()
    result = dict(analytical_mb=counter.bytes / MB,
                  measured_mb=meter.bytes / MB)
    if by_module:
        result['by_module_mb'] = {
            kind: size / MB for kind, size in meter.by_owner.most_common()}
    if device.type == 'cuda':
        torch.cuda.synchronize()
        result['cuda_max_allocated_mb'] = torch.cuda.max_memory_allocated(
        ) / MB
    counter.remove()
    return result


def classifier_eps(text):
    """``--lean-classifier-eps``: a threshold, or 'whole'."""
    if text == 'whole':
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number or 'whole', got {text!r}") from None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+', choices=sorted(MODEL_CONFIGS),
                        default=list(MODEL_CONFIGS))
    parser.add_argument('--methods', nargs='+', choices=method_names(),
                        default=['vanilla', 'hosvd'])
    parser.add_argument('--layers', nargs='+', type=int, default=[5])
    parser.add_argument('--lean', action='store_true',
                        help='also measure the lean variant of each method')
    parser.add_argument('--eps', type=float, default=0.8)
    parser.add_argument('--lean-norm-eps', type=float, default=None,
                        help="eps of the lean BN inputs (default: the "
                        "model's lean config)")
    parser.add_argument('--lean-classifier-eps', type=classifier_eps,
                        default=None,
                        help="eps of the lean classifier's input, or "
                        "'whole' to store it whole (default: the model's "
                        'lean config)')
    parser.add_argument('--lean-bits', type=int, default=None,
                        help='lean variants also keep their LayerNorm and '
                        'GELU inputs as codes of this many bits')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--size', type=int, default=128)
    parser.add_argument('--by-module', action='store_true',
                        help='list the measured MB by module class')
    add_input_arguments(parser)
    args = parser.parse_args(argv)
    if args.lean_bits is not None and not args.lean:
        parser.error(f'--lean-bits {args.lean_bits} needs --lean')
    device = torch.device(args.device or (
        'cuda' if torch.cuda.is_available() else 'cpu'))
    methods = ['vanilla'] + [m for m in args.methods if m != 'vanilla']
    variants = [(m, False) for m in methods]
    if args.lean:
        variants += [(m, True) for m in methods if m != 'vanilla']
    records = []
    print(f"{'model':>12} {'layers':>6} {'method':>20} {'analytical':>11} "
          f"{'measured':>9} {'/ vanilla':>10}")
    for model_name in args.models:
        checkpoint, x, _ = model_inputs(model_name, args.from_protocol,
                                        args.batch, args.size)
        lean_eps = lean_thresholds(model_name)
        if args.lean_norm_eps is not None:
            lean_eps['norm'] = args.lean_norm_eps
        if args.lean_classifier_eps is not None:
            lean_eps['classifier'] = (None if args.lean_classifier_eps
                                      == 'whole' else args.lean_classifier_eps)
        for layers in args.layers:
            base = None
            for method, lean in variants:
                result = measure(model_name, method, layers, lean, args.eps,
                                 lean_eps, x, device, checkpoint,
                                 args.lean_bits, args.by_module)
                base = result['measured_mb'] if method == 'vanilla' and (
                    not lean) else base
                record = dict(model=model_name, method=method, layers=layers,
                              lean=lean,
                              lean_bits=args.lean_bits if lean else None,
                              lean_eps=lean_eps if lean else None,
                              weights='protocol' if checkpoint else 'random',
                              **result,
                              measured_ratio_to_vanilla=result['measured_mb']
                              / base)
                records.append(record)
                name = method + (' lean' if lean else '') + (
                    str(args.lean_bits) if lean and args.lean_bits else '')
                line = (f'{model_name:>12} {layers:>6} {name:>20} '
                        f"{result['analytical_mb']:10.3f}M "
                        f"{result['measured_mb']:8.3f}M "
                        f"{record['measured_ratio_to_vanilla']:9.3f}x")
                if 'cuda_max_allocated_mb' in result:
                    line += f"  cuda {result['cuda_max_allocated_mb']:.1f}M"
                print(line, flush=True)
                if args.by_module:
                    for kind, size in list(
                            result['by_module_mb'].items())[:BY_MODULE_ROWS]:
                        print(f'{"":>42} {kind:>30} {size:8.3f}M')
    if args.json:
        write_json(args.json, records)


if __name__ == '__main__':
    main()
