# Activation checkpointing: the blocks holding fine-tuned layers are
# recomputed in backward (non-reentrant, so it works behind the frozen
# backbone); exact.
_base_ = './segformer_mit-b0_hosvd-eps0.8-lean-l5_shapes-target-128x128.py'
custom_hooks = [
    dict(type='CompressConvHook', method='hosvd', eps=0.8, num_layers=5, lean=True, lean_eps={'norm': 0.8, 'classifier': None}),
    dict(type='ActivationMemoryHook'),
    dict(type='ActivationCheckpointHook')
]
