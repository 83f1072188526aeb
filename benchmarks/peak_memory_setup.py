"""One whole-step memory configuration, set up as training would be."""
import copy

# mmseg_hosvd first: with mmcv-lite, mmseg imports only after its compat fixes
import mmseg_hosvd  # noqa: F401  # isort: skip
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.runner import load_checkpoint
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules
from protocol_inputs import lean_thresholds, protocol_checkpoint, raw_batch

from mmseg_hosvd.engine import (ActivationCheckpointHook, CompressConvHook,
                                FrozenPrefixHook)
from mmseg_hosvd.methods import accepted_options
from mmseg_hosvd.models import set_norm_eval_
from mmseg_hosvd.protocol.matrix import config_path
from mmseg_hosvd.reductions.chunked_loss import chunk_losses_


def optim_wrapper_config(cfg: Config, reductions: list, device: str,
                         accumulate: int) -> dict:
    """The config's optimizer wrapper, with AMP and accumulation if asked."""
    optim = copy.deepcopy(cfg.optim_wrapper)
    if 'amp' in reductions:
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
        ``dict(model, optim_wrapper, batches, plan, device, ranks)``;
        ``batches`` are the micro-batches of one optimizer step.
    """
    register_all_modules()
    torch.manual_seed(0)
    device = torch.device(spec['device'] or (
        'cuda' if torch.cuda.is_available() else 'cpu'))
    cfg = Config.fromfile(config_path(spec['model'], 'finetune', 'vanilla',
                                      5))
    cfg.model.data_preprocessor.size = (spec['size'], spec['size'])
    model = MODELS.build(cfg.model)
    if spec['from_protocol']:
        load_checkpoint(model, protocol_checkpoint(spec['model']),
                        map_location='cpu', logger='silent')
    options = accepted_options(spec['method'], dict(eps=spec['eps']),
                               spec['lean'])
    hook = CompressConvHook(method=spec['method'], num_layers=spec['layers'],
                            lean=spec['lean'],
                            lean_eps=(lean_thresholds(spec['model'])
                                      if spec['lean'] else None),
                            lean_bits=spec.get('lean_bits'),
                            **options)
    plan = hook.apply(model)
    if 'prefix' in spec['reductions']:
        FrozenPrefixHook(micro_batch=1).apply(model)
    if 'loss' in spec['reductions']:
        chunk_losses_(model, 1)
    if 'checkpoint' in spec['reductions']:
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
    if hook.session is not None:
        with torch.no_grad():
            hook.session.measure(
                model, model.data_preprocessor(batches[0], True)['inputs'])
    optim_wrapper = build_optim_wrapper(
        model, optim_wrapper_config(cfg, spec['reductions'], device.type,
                                    accumulate))
    return dict(model=model, optim_wrapper=optim_wrapper, batches=batches,
                plan=plan, device=device,
                ranks={k: list(v) for k, v in
                       (plan.results.get('ranks') or {}).items()})
