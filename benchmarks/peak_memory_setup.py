"""One whole-step memory configuration, set up as training would be."""
import copy

# mmseg_hosvd first: with mmcv-lite, mmseg imports only after its compat fixes
import mmseg_hosvd  # noqa: F401  # isort: skip
import torch
from fine_tuned_model import build_fine_tuned_model
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from protocol_inputs import lean_thresholds, protocol_checkpoint, raw_batch

from mmseg_hosvd.engine import ActivationCheckpointHook, FrozenPrefixHook
from mmseg_hosvd.methods import accepted_options
from mmseg_hosvd.models import set_norm_eval_
from mmseg_hosvd.reductions.chunked_loss import chunk_losses_
from mmseg_hosvd.reductions.concat_in_place import concat_in_place_
from mmseg_hosvd.reductions.describe import parse_reductions_tag


def optim_wrapper_config(cfg: Config, amp: bool, device: str,
                         accumulate: int) -> dict:
    """The config's optimizer wrapper, with AMP and accumulation if asked."""
    optim = copy.deepcopy(cfg.optim_wrapper)
    if amp:
        if device == 'cuda':
            optim.update(type='AmpOptimWrapper', dtype='float16')
        else:
            optim.update(type='AutocastOptimWrapper', dtype='bfloat16')
    if accumulate > 1:
        optim['accumulative_counts'] = accumulate
    return optim


def build_setup(spec: dict) -> dict:
    """The model, optimizer wrapper and micro-batches of ``spec``.

    Returns:
        ``dict(model, optim_wrapper, batches, options, plan, device,
        ranks)``; ``batches`` are the micro-batches of one optimizer step,
        ``options`` the method's options as applied.
    """
    torch.manual_seed(0)
    device = torch.device(spec['device'] or (
        'cuda' if torch.cuda.is_available() else 'cpu'))
    reductions = parse_reductions_tag('-'.join(spec['reductions']))
    options = accepted_options(
        spec['method'], dict(eps=spec['eps'], bits=spec.get('bits', 8)),
        spec['lean'])
    model, plan, session, cfg = build_fine_tuned_model(
        spec['model'], spec['method'], spec['layers'],
        checkpoint=(protocol_checkpoint(spec['model'])
                    if spec['from_protocol'] else None),
        options=options, lean=spec['lean'],
        lean_eps=lean_thresholds(spec['model']) if spec['lean'] else None,
        lean_bits=spec.get('lean_bits'), size=spec['size'])
    if reductions['frozen_prefix'] is not None:
        FrozenPrefixHook(micro_batch=reductions['frozen_prefix']).apply(model)
    if reductions['chunked_loss'] is not None:
        chunk_losses_(model, reductions['chunked_loss'])
    if reductions['concat']:
        concat_in_place_(model)
    if reductions['checkpoint']:
        ActivationCheckpointHook().apply(model)
    model.to(device).train()
    set_norm_eval_(model)
    micro = spec['micro_batch']
    accumulate = spec['batch'] // micro
    batches = [
        raw_batch(spec['model'], spec['from_protocol'], micro, spec['size'],
                  cfg.model.decode_head.num_classes, start=i * micro)
        for i in range(accumulate)
    ]
    with torch.no_grad():
        session.calibrate(
            model, model.data_preprocessor(batches[0], True)['inputs'])
    optim_wrapper = build_optim_wrapper(
        model, optim_wrapper_config(cfg, reductions['amp'], device.type,
                                    accumulate))
    return dict(model=model, optim_wrapper=optim_wrapper, batches=batches,
                options=options,
                plan=plan, device=device,
                ranks={k: list(v) for k, v in
                       (plan.results.get('ranks') or {}).items()})
