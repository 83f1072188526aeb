# Activation checkpointing: the blocks holding fine-tuned layers are
# recomputed in backward (non-reentrant, so it works behind the frozen
# backbone); exact.
_base_ = './upernet_swin-t_vanilla-l10_shapes-target-128x128.py'
custom_hooks = [
    dict(type='CompressConvHook', method='vanilla', num_layers=10),
    dict(type='ActivationMemoryHook'),
    dict(type='ActivationCheckpointHook')
]
