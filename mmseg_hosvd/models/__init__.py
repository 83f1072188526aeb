"""Compressed convolutions and Linear layers registered in mmseg's MODELS,
explicit attention, and model surgery.

A re-export of the public names of :mod:`mmseg_hosvd.layers` and
:mod:`mmseg_hosvd.selection`, where they are defined.
"""
from ..layers.compressed_conv import (
                                      CompressedConv2d,
                                      Conv2dGradFilter,
                                      Conv2dHOSVD,
                                      Conv2dQuantized,
                                      Conv2dSVD,
)
from ..layers.compressed_linear import (
                                      CompressedLinear,
                                      LinearHOSVD,
                                      LinearQuantized,
                                      LinearSVD,
)
from ..layers.explicit_attention import ExplicitMultiheadAttention
from ..layers.subspace_conv import Conv2dHOSVDSubspace
from ..layers.subspace_linear import LinearHOSVDSubspace
from ..selection.attention_swap import explicit_attention_
from ..selection.finetune_plan import FinetunePlan
from ..selection.layer_presets import PRESETS, detect_preset, preset_layers
from ..selection.layer_selection import (
                                      LayerSelection,
                                      conv_execution_order,
                                      last_convs,
                                      select_layers,
)
from ..selection.model_trace import ModelTrace, trace_model
from ..selection.surgery import convert_convs_, freeze_except_, set_norm_eval_

__all__ = [
    'CompressedConv2d', 'Conv2dGradFilter', 'Conv2dHOSVD', 'Conv2dQuantized',
    'Conv2dSVD', 'ExplicitMultiheadAttention', 'explicit_attention_',
    'Conv2dHOSVDSubspace', 'FinetunePlan', 'LayerSelection', 'ModelTrace',
    'PRESETS', 'detect_preset', 'preset_layers', 'conv_execution_order',
    'last_convs', 'select_layers', 'trace_model', 'convert_convs_',
    'freeze_except_', 'set_norm_eval_', 'CompressedLinear', 'LinearHOSVD',
    'LinearHOSVDSubspace', 'LinearQuantized', 'LinearSVD'
]
