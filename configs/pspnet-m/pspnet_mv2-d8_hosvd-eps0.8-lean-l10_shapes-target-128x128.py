# HOSVD eps 0.8 with a lean fine-tuned region: ReLU keeps a bit mask, frozen
# BatchNorm keeps nothing full-size, the classifier stores a HOSVD form.
_base_ = './pspnet_mv2-d8_vanilla-l5_shapes-target-128x128.py'
custom_hooks = [
    dict(
        type='CompressConvHook',
        method='hosvd',
        eps=0.8,
        num_layers=10,
        lean=True),
    dict(type='ActivationMemoryHook')
]
