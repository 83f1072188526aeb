"""Compressed convolutions and Linear layers registered in mmseg's MODELS,
explicit attention, and model surgery."""
from .attention_swap import explicit_attention_
from .compressed_conv import (
                              CompressedConv2d,
                              Conv2dGradFilter,
                              Conv2dHOSVD,
                              Conv2dQuantized,
                              Conv2dSVD,
)
from .compressed_linear import (CompressedLinear, LinearHOSVD,
                                LinearQuantized, LinearSVD)
from .explicit_attention import ExplicitMultiheadAttention
from .finetune_plan import FinetunePlan
from .layer_presets import PRESETS, detect_preset, preset_layers
from .layer_selection import (LayerSelection, conv_execution_order,
                              last_convs, select_layers)
from .model_trace import ModelTrace, trace_model
from .subspace_conv import Conv2dHOSVDSubspace
from .subspace_linear import LinearHOSVDSubspace
from .surgery import convert_convs_, freeze_except_, set_norm_eval_

__all__ = [
    'CompressedConv2d', 'Conv2dGradFilter', 'Conv2dHOSVD', 'Conv2dQuantized',
    'Conv2dSVD', 'ExplicitMultiheadAttention', 'explicit_attention_',
    'Conv2dHOSVDSubspace', 'FinetunePlan', 'LayerSelection', 'ModelTrace',
    'PRESETS', 'detect_preset', 'preset_layers', 'conv_execution_order',
    'last_convs', 'select_layers', 'trace_model', 'convert_convs_',
    'freeze_except_', 'set_norm_eval_', 'CompressedLinear', 'LinearHOSVD',
    'LinearHOSVDSubspace', 'LinearQuantized', 'LinearSVD'
]
