# Gradient Filter at 10 layers: it filters convolutions only, so the preset's
# five Linear layers of Swin's last stage (see selection/layer_presets.py) are
# fine-tuned uncompressed, as vanilla; the five head convolutions are filtered
# with the preset's radii.
_base_ = './upernet_swin-t_vanilla-l5_shapes-target-128x128.py'
custom_hooks = [
    dict(
        type='CompressConvHook',
        method='gradient_filter',
        layers=[
            'decode_head.fpn_bottleneck.conv',
            'decode_head.fpn_convs.2.conv',
            'decode_head.fpn_convs.1.conv',
            'decode_head.fpn_convs.0.conv',
            'decode_head.bottleneck.conv',
        ],
        trainable=[
            'backbone.stages.3.blocks.1.ffn.layers.1',
            'backbone.stages.3.blocks.1.ffn.layers.0.0',
            'backbone.stages.3.blocks.1.attn.w_msa.proj',
            'backbone.stages.3.blocks.1.attn.w_msa.qkv',
            'backbone.stages.3.blocks.0.ffn.layers.1',
        ],
        radius={
            'decode_head.fpn_bottleneck.conv': 8,
            'decode_head.fpn_convs.2.conv': 2,
            'decode_head.fpn_convs.1.conv': 4,
            'decode_head.fpn_convs.0.conv': 8,
            'decode_head.bottleneck.conv': 2,
        }),
    dict(type='ActivationMemoryHook')
]
