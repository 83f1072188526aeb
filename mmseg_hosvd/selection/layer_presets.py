"""Reference fine-tuned layers of the protocol models (docs/design.md).

Each preset lists, for 5 and 10 fine-tuned layers, the layers that are
compressed (module names of ``nn.Conv2d``; for the transformers also of
``nn.Linear``), the extra modules that are trainable without compression,
and the Gradient Filter radius of each convolution. The classifier
``decode_head.conv_seg`` is always trainable and never compressed.

The six CNN presets are the paper's. The two transformer presets follow one
rule: 5 layers are the decode head's last five ``nn.Conv2d`` / ``nn.Linear``
modules in execution order (for UPerNet the same five as with ResNet-18),
10 layers add the backbone's last five, nearest the output first. For
SegFormer-B0 that is exactly the last 10 in execution order (MiT's Mix-FFN is
convolutional; its attention projections are called functionally by
``nn.MultiheadAttention`` and do not run as modules); for Swin-T UPerNet it
skips the PPM branches and the lateral convolutions of the head, so that the
10-layer setting reaches the backbone's Linear layers as the CNN presets reach
their backbones.
"""
from typing import Dict, List, NamedTuple, Optional, Tuple

from torch import nn

CLASSIFIER = 'decode_head.conv_seg'


class LayerPreset(NamedTuple):
    """Reference fine-tuning set-up of one model.

    Attributes:
        compress: Compressed convolution names per layer count.
        trainable: Extra trainable module names per layer count.
        radius: Gradient Filter radius per compressed convolution, per
            layer count.
    """
    compress: Dict[int, List[str]]
    trainable: Dict[int, List[str]]
    radius: Dict[int, Dict[str, int]]


def _head(prefix, names):
    return [f'decode_head.{prefix}{n}' for n in names]


_ASPP = ['decode_head.bottleneck.conv'] + _head(
    'aspp_modules.', [f'{i}.conv' for i in range(4)])
_ASPP_RADII = dict(zip(_ASPP, (3, 3, 3, 6, 9), strict=True))
_R18_LAYER4_TAIL = [
    'backbone.layer4.1.conv2', 'backbone.layer4.1.conv1',
    'backbone.layer4.0.conv2', 'backbone.layer4.0.conv1'
]
_R18_LAYER4 = _R18_LAYER4_TAIL + ['backbone.layer4.0.downsample.0']
_MV2_DLV3_TAIL = [
    'backbone.layer7.0.conv.2.conv', 'backbone.layer7.0.conv.1.conv',
    'backbone.layer7.0.conv.0.conv', 'backbone.layer6.2.conv.2.conv'
]
_MV2_PSP_TAIL = _MV2_DLV3_TAIL[:3] + [
    'backbone.layer6.2.conv.2.conv', 'backbone.layer6.2.conv.1.conv'
]
_FCN_5 = [
    'decode_head.conv_cat.conv', 'decode_head.convs.1.conv',
    'decode_head.convs.0.conv', 'backbone.layer4.1.conv2',
    'backbone.layer4.1.conv1'
]
_FCN_10 = _FCN_5 + [
    'backbone.layer4.0.conv2', 'backbone.layer4.0.conv1',
    'backbone.layer4.0.downsample.0', 'backbone.layer3.1.conv2',
    'backbone.layer3.1.conv1'
]
_UPER_5 = ['decode_head.fpn_bottleneck.conv'] + _head(
    'fpn_convs.', ['2.conv', '1.conv', '0.conv']) + [
        'decode_head.bottleneck.conv'
    ]
_UPER_10 = _UPER_5 + _head('lateral_convs.', ['2.conv', '1.conv', '0.conv'])
_UPER_RADII = {
    'decode_head.fpn_bottleneck.conv': 8,
    'decode_head.fpn_convs.0.conv': 8,
    'decode_head.fpn_convs.1.conv': 4,
    'decode_head.fpn_convs.2.conv': 2,
    'decode_head.lateral_convs.0.conv': 8,
    'decode_head.lateral_convs.1.conv': 4,
    'decode_head.lateral_convs.2.conv': 2,
    'decode_head.bottleneck.conv': 2,
}
_SEGFORMER_5 = ['decode_head.fusion_conv.conv'] + _head(
    'convs.', ['3.conv', '2.conv', '1.conv', '0.conv'])
_MIT_B0_TAIL = [
    'backbone.layers.3.1.1.ffn.layers.4', 'backbone.layers.3.1.1.ffn.layers.1',
    'backbone.layers.3.1.1.ffn.layers.0', 'backbone.layers.3.1.0.ffn.layers.4',
    'backbone.layers.3.1.0.ffn.layers.1'
]
# 128 x 128 inputs: SegformerHead's convs.i read 32 / 16 / 8 / 4 pixel maps;
# radii as UPerNet's by resolution (1/4: 8, 1/8: 4, else 2)
_SEGFORMER_RADII = {
    'decode_head.fusion_conv.conv': 8,
    'decode_head.convs.0.conv': 8,
    'decode_head.convs.1.conv': 4,
}
_SWIN_T_TAIL = [
    'backbone.stages.3.blocks.1.ffn.layers.1',
    'backbone.stages.3.blocks.1.ffn.layers.0.0',
    'backbone.stages.3.blocks.1.attn.w_msa.proj',
    'backbone.stages.3.blocks.1.attn.w_msa.qkv',
    'backbone.stages.3.blocks.0.ffn.layers.1'
]


def _radii(names, default, overrides=None):
    overrides = overrides or {}
    return {n: overrides.get(n, default) for n in names}


def _psp(tail: List[str]) -> LayerPreset:
    """A PSPNet preset: the head's bottleneck, ``tail`` too at 10 layers,
    radius 4; the whole head trains."""
    head = ['decode_head.bottleneck.conv']
    return LayerPreset(
        compress={5: head, 10: head + tail},
        trainable={5: ['decode_head'], 10: ['decode_head']},
        radius={5: _radii(head, 4), 10: _radii(head + tail, 4)})


PRESETS: Dict[str, LayerPreset] = {
    'deeplabv3':
    LayerPreset(
        compress={5: _ASPP, 10: _ASPP + _R18_LAYER4_TAIL},
        trainable={5: [], 10: []},
        radius={
            5: dict(_ASPP_RADII),
            10: _radii(_ASPP + _R18_LAYER4_TAIL, 2, _ASPP_RADII)
        }),
    'deeplabv3-m':
    LayerPreset(
        compress={5: _ASPP, 10: _ASPP + _MV2_DLV3_TAIL},
        trainable={5: ['decode_head'], 10: ['decode_head']},
        radius={
            5: dict(_ASPP_RADII),
            10: _radii(_ASPP + _MV2_DLV3_TAIL, 3, _ASPP_RADII)
        }),
    'pspnet': _psp(_R18_LAYER4),
    'pspnet-m': _psp(_MV2_PSP_TAIL),
    'fcn':
    LayerPreset(
        compress={5: _FCN_5, 10: _FCN_10},
        trainable={5: [], 10: []},
        radius={5: _radii(_FCN_5, 4), 10: _radii(_FCN_10, 2)}),
    'upernet':
    LayerPreset(
        compress={5: _UPER_5, 10: _UPER_10},
        trainable={5: [], 10: []},
        radius={5: _radii(_UPER_5, 8, _UPER_RADII), 10: dict(_UPER_RADII)}),
    'segformer':
    LayerPreset(
        compress={5: _SEGFORMER_5, 10: _SEGFORMER_5 + _MIT_B0_TAIL},
        trainable={5: [], 10: []},
        radius={
            5: _radii(_SEGFORMER_5, 2, _SEGFORMER_RADII),
            10: _radii(_SEGFORMER_5 + _MIT_B0_TAIL, 2, _SEGFORMER_RADII)
        }),
    # the Gradient Filter is spatial: radii for the convolutions only
    'swin-upernet':
    LayerPreset(
        compress={5: _UPER_5, 10: _UPER_5 + _SWIN_T_TAIL},
        trainable={5: [], 10: []},
        radius={5: _radii(_UPER_5, 8, _UPER_RADII),
                10: _radii(_UPER_5, 8, _UPER_RADII)}),
}

_HEADS = {
    'ASPPHead': 'deeplabv3',
    'PSPHead': 'pspnet',
    'FCNHead': 'fcn',
    'UPerHead': 'upernet'
}


def detect_preset(model: nn.Module) -> Optional[str]:
    """Name of the protocol model that ``model`` is, or None.

    A model matches when it has a ResNet-18 (V1c) or MobileNetV2 backbone
    and an ASPP, PSP, FCN or UPerNet decode head (UPerNet and FCN presets
    exist for ResNet-18 only), or when it is SegFormer-B0 (MiT with 32
    embedding dimensions and a SegformerHead) or a Swin-T UPerNet (Swin with
    96 embedding dimensions and a UPerHead); either transformer's last stage
    must have the two blocks the preset names.

    Args:
        model: An mmseg segmentor.

    Returns:
        A key of :data:`PRESETS`, or None for any other model.
    """
    backbone = getattr(model, 'backbone', None)
    head = getattr(model, 'decode_head', None)
    if backbone is None or head is None:
        return None
    kind = type(backbone).__name__
    if kind in ('MixVisionTransformer', 'SwinTransformer'):
        return _transformer_preset(backbone, type(head).__name__)
    name = _HEADS.get(type(head).__name__)
    if name is None:
        return None
    if kind in ('ResNetV1c', 'ResNet') and getattr(backbone, 'depth',
                                                     None) == 18:
        return name
    if kind == 'MobileNetV2' and name in ('deeplabv3', 'pspnet'):
        return f'{name}-m'
    return None


def _transformer_preset(backbone: nn.Module, head: str) -> Optional[str]:
    """'segformer', 'swin-upernet' or None for a MiT or Swin backbone."""
    if (head == 'SegformerHead' and backbone.embed_dims == 32
            and backbone.num_layers[-1] == 2):
        return 'segformer'
    if (head == 'UPerHead' and backbone.num_features[0] == 96
            and len(backbone.stages[-1].blocks) == 2):
        return 'swin-upernet'
    return None


def preset_layers(name: str,
                  num_layers: int) -> Tuple[List[str], List[str], dict]:
    """Compressed names, extra trainable names and radii of a preset.

    Args:
        name: A key of :data:`PRESETS`.
        num_layers: 5 or 10.

    Returns:
        ``(compress, trainable, radius)``.

    Raises:
        ValueError: For an unknown preset or a layer count it does not have.
    """
    if name not in PRESETS:
        raise ValueError(f'unknown preset {name!r}; known: {sorted(PRESETS)}')
    preset = PRESETS[name]
    if num_layers not in preset.compress:
        raise ValueError(f'preset {name!r} has reference lists for '
                         f'{sorted(preset.compress)} layers, got num_layers='
                         f'{num_layers}; give layers=[...] or preset=None '
                         'to take the last N convolutions')
    return (list(preset.compress[num_layers]),
            list(preset.trainable[num_layers]),
            dict(preset.radius[num_layers]))
