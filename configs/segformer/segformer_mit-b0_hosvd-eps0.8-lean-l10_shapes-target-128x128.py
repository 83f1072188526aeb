# HOSVD eps 0.8 with a lean fine-tuned region: ReLU keeps a bit mask, frozen
# BatchNorm keeps nothing full-size. The BN weights get their gradients from
# HOSVD forms of their inputs at eps 0.8. The classifier keeps its whole input
# (classifier=None): on SegFormer-B0 a HOSVD form at eps 0.99 kept 55% of it
# (ranks (8, 217, 25, 25) of (8, 256, 32, 32)) for 22-29 ms per step, and
# lowered no whole-step peak (README, "The transformer models").
_base_ = './segformer_mit-b0_vanilla-l5_shapes-target-128x128.py'
custom_hooks = [
    dict(
        type='CompressConvHook',
        method='hosvd',
        eps=0.8,
        num_layers=10,
        lean=True,
        lean_eps=dict(norm=0.8, classifier=None)),
    dict(type='ActivationMemoryHook')
]
