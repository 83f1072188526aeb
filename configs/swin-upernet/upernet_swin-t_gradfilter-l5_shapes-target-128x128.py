_base_ = './upernet_swin-t_vanilla-l5_shapes-target-128x128.py'
custom_hooks = [
    dict(type='CompressConvHook', method='gradient_filter', num_layers=5),
    dict(type='ActivationMemoryHook')
]
