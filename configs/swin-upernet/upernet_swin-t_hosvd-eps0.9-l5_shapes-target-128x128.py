_base_ = './upernet_swin-t_vanilla-l5_shapes-target-128x128.py'
custom_hooks = [
    dict(type='CompressConvHook', method='hosvd', eps=0.9, num_layers=5),
    dict(type='ActivationMemoryHook')
]
