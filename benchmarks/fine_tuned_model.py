"""A protocol model set up for fine-tuning, as the benchmarks measure it.

Every benchmark builds its model here: the protocol's fine-tuning config of
the model, optionally a checkpoint, then ``CompressConvHook`` applied with
the method and its options. The method's calibration (subspace ranks, for
one) is left to the caller, on a batch of its own, through
``session.calibrate``, the same call for every method.

It imports only the library (no sibling benchmark), so that it imports both
as ``fine_tuned_model`` from a benchmark run by path and as
``benchmarks.fine_tuned_model``.
"""
from typing import Any, Dict, NamedTuple, Optional

# mmseg_hosvd first: with mmcv-lite, mmseg imports only after its compat fixes
import mmseg_hosvd  # noqa: F401  # isort: skip
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules
from torch import nn

from mmseg_hosvd.engine import CompressConvHook
from mmseg_hosvd.methods import MethodSession, accepted_options
from mmseg_hosvd.protocol.matrix import config_path


class FineTunedModel(NamedTuple):
    """What :func:`build_fine_tuned_model` gives."""
    #: The segmentor, converted (on the CPU, in its default mode).
    model: nn.Module
    #: The fine-tuning plan (``plan['compressed']``, ``plan.results``...).
    plan: Any
    #: The method's session; a plain :class:`MethodSession` (whose
    #: ``calibrate`` does nothing) for a method without one.
    session: MethodSession
    #: The config the model was built from.
    cfg: Config


def build_fine_tuned_model(model_name: str,
                           method: str = 'vanilla',
                           layers: int = 5,
                           *,
                           checkpoint: Optional[str] = None,
                           options: Optional[Dict[str, Any]] = None,
                           lean: bool = False,
                           lean_eps=None,
                           lean_bits: Optional[int] = None,
                           size: Optional[int] = None) -> FineTunedModel:
    """The protocol model ``model_name`` set up to fine-tune with ``method``.

    Args:
        model_name: A key of the protocol's ``MODEL_CONFIGS``.
        method: A registered method.
        layers: How many convolutions (or Linear layers) it fine-tunes.
        checkpoint: A checkpoint loaded before the method is applied, or
            None for the config's initial weights.
        options: Options for the hook; those the method (or its lean
            variant) does not accept are dropped (``accepted_options``),
            so one set serves every method.
        lean: Whether the lean region is set up.
        lean_eps: Its thresholds (used only if ``lean``).
        lean_bits: Its LayerNorm and GELU input bits (only if ``lean``).
        size: The data preprocessor's crop size (square), or None for the
            config's.
    """
    register_all_modules()
    cfg = Config.fromfile(config_path(model_name, 'finetune', 'vanilla', 5))
    if size is not None:
        cfg.model.data_preprocessor.size = (size, size)
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu',
                        logger='silent')
    hook = CompressConvHook(
        method=method, num_layers=layers, lean=lean,
        lean_eps=lean_eps if lean else None,
        lean_bits=lean_bits if lean else None,
        **accepted_options(method, dict(options or {}), lean))
    plan = hook.apply(model)
    session = hook.session if hook.session is not None else MethodSession()
    return FineTunedModel(model, plan, session, cfg)
