_base_ = './segformer_mit-b0_vanilla-l5_shapes-target-128x128.py'
custom_hooks = [
    dict(type='CompressConvHook', method='hosvd', eps=0.8, num_layers=10),
    dict(type='ActivationMemoryHook')
]
