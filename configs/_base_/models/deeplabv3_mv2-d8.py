# DeepLabV3-M: ASPP head on MobileNetV2-d8; no auxiliary head, dropout 0.
_base_ = ['./mv2-d8.py']
model = dict(
    decode_head=dict(
        type='ASPPHead',
        in_channels=320,
        in_index=3,
        channels=128,
        dilations=(1, 12, 24, 36),
        dropout_ratio=0.,
        num_classes=5,
        norm_cfg={{_base_.norm_cfg}},
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
