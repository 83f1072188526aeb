_base_ = './upernet_swin-t_vanilla-l5_shapes-target-128x128.py'
custom_hooks = [
    dict(type='CompressConvHook', method='quantized', bits=2, num_layers=10),
    dict(type='ActivationMemoryHook')
]
