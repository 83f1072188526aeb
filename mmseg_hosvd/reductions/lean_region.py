"""The lean fine-tuned region: ReLU, frozen BN and classifier store little.

From the first fine-tuned convolution to the logits, ReLU/ReLU6 keep a 1-bit
mask, BatchNorm with frozen statistics keeps nothing full-size (a trained BN
weight gets its gradient from a HOSVD form of the input) and the classifier
stores a HOSVD form of its input, or its whole input where
``lean_eps['classifier']`` is None (trained, not compressed).
With ``bits``, the region's LayerNorm and GELU (transformers) keep their
inputs as per-group codes: they have no exact form that keeps less than
their input, so this one is approximate and opt-in.
"""
from typing import Dict, List, Optional, Sequence, Union

from torch import nn

from ..layers.compressed_conv import CompressedConv2d, Conv2dHOSVD
from ..ops import check_eps
from ..selection.layer_presets import CLASSIFIER
from ..selection.model_trace import ModelTrace, modules_after
from ..selection.surgery import has_module, set_submodule
from .lean_modules import (
    BitMaskReLU,
    LeanFrozenBatchNorm2d,
    QuantizedGELU,
    QuantizedLayerNorm,
)

#: Modules that the lean option replaces in the fine-tuned region.
LEAN_KINDS = (nn.ReLU, nn.ReLU6, nn.BatchNorm2d)
#: Modules it also replaces when given ``bits`` (approximate backward).
QUANTIZED_KINDS = (nn.LayerNorm, nn.GELU)
#: Parts of the lean region with their own HOSVD threshold.
LEAN_PARTS = ('norm', 'classifier')
#: Parts whose threshold may be None: their input is stored whole.
WHOLE_PARTS = ('classifier', )


def lean_eps_of(lean_eps: Union[None, float, Dict[str, Optional[float]]],
                eps: float) -> Dict[str, Optional[float]]:
    """The lean region's thresholds: ``{'norm': ..., 'classifier': ...}``.

    Args:
        lean_eps: None (``eps`` for both), one number for both, or a dict
            with some of the keys of :data:`LEAN_PARTS`. ``classifier=None``
            keeps the classifier a plain convolution that stores its whole
            input (exact weight gradient): worth it where a HOSVD form of
            that input would keep most of it anyway. ``lean_eps=None``
            does not: it compresses both parts at ``eps``.
        eps: The default threshold (the fine-tuned convolutions' eps).

    Raises:
        ValueError: For an unknown key, a threshold outside (0, 1], or
            None for a part that cannot be kept whole.
    """
    if lean_eps is None:
        return {part: eps for part in LEAN_PARTS}
    if not isinstance(lean_eps, dict):
        value = check_eps(lean_eps)
        return {part: value for part in LEAN_PARTS}
    unknown = sorted(set(lean_eps) - set(LEAN_PARTS))
    if unknown:
        raise ValueError(f'lean_eps has unknown keys {unknown}; use '
                         f'{list(LEAN_PARTS)}')
    checked = {}
    for part in LEAN_PARTS:
        value = lean_eps.get(part, eps)
        if value is None and part in WHOLE_PARTS:
            checked[part] = None
            continue
        try:
            checked[part] = check_eps(value)
        except ValueError as error:
            whole = (f' (only {list(WHOLE_PARTS)} may be None: stored whole)'
                     if value is None else '')
            raise ValueError(f"lean_eps['{part}']: {error}{whole}") from None
    return checked


def make_lean_(model: nn.Module, trace: ModelTrace, starts: Sequence[str],
               lean_eps: Dict[str, Optional[float]], solver: str,
               bits: Optional[int] = None,
               warm_start: bool = True) -> List[str]:
    """Swaps the region's ReLU/BN (and, with ``bits``, LayerNorm/GELU) and
    the classifier (unless ``lean_eps['classifier']`` is None) in place.

    Args:
        model: The segmentor, modified in place.
        trace: Its trace (taken before any swap).
        starts: The fine-tuned convolutions; the earliest to run starts the
            region (the classifier when empty).
        lean_eps: Thresholds from :func:`lean_eps_of`.
        solver: HOSVD solver of the BN and classifier inputs.
        bits: Bits per stored element of the region's LayerNorm and GELU
            inputs (2, 4 or 8); None leaves them exact. Only
            ``nn.LayerNorm`` and ``nn.GELU`` themselves are swapped: a
            subclass may have a forward of its own.
        warm_start: Whether the classifier's solver starts each step from
            the step before (see
            :class:`~mmseg_hosvd.layers.compressed_conv.Conv2dHOSVD`).

    Returns:
        Names of the swapped modules, the classifier last (absent where
        ``lean_eps['classifier']`` is None).
    """
    kinds = LEAN_KINDS + (QUANTIZED_KINDS if bits is not None else ())
    names = [
        name for name in modules_after(trace, list(starts) or [CLASSIFIER],
                                       kinds)
        if not issubclass(trace.types[name], QUANTIZED_KINDS)
        or trace.types[name] in QUANTIZED_KINDS
    ]
    for name in names:
        module = model.get_submodule(name)
        if isinstance(module, (nn.ReLU, nn.ReLU6)):
            set_submodule(model, name, BitMaskReLU.from_module(module))
        elif isinstance(module, nn.LayerNorm):
            set_submodule(model, name,
                          QuantizedLayerNorm.from_module(module, bits))
        elif isinstance(module, nn.GELU):
            set_submodule(model, name, QuantizedGELU.from_module(module, bits))
        else:
            set_submodule(
                model, name,
                LeanFrozenBatchNorm2d.from_module(module, lean_eps['norm'],
                                                  solver))
    if lean_eps['classifier'] is not None and has_module(
            model, CLASSIFIER) and not isinstance(
            model.get_submodule(CLASSIFIER), CompressedConv2d):
        set_submodule(
            model, CLASSIFIER,
            Conv2dHOSVD.from_conv(model.get_submodule(CLASSIFIER),
                                  eps=lean_eps['classifier'], solver=solver,
                                  warm_start=warm_start))
        names.append(CLASSIFIER)
    return names
