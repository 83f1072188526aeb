# HOSVD eps 0.8 with a lean fine-tuned region: ReLU keeps a bit mask, frozen
# BatchNorm keeps nothing full-size, the classifier stores a HOSVD form. The
# BN weights get their gradients from HOSVD forms of their inputs at eps 0.8,
# the classifier from one at 0.99: with 0.8 for the classifier too the
# protocol's CNN models lost 1.1 to 3.2 mIoU against plain HOSVD.
_base_ = './segformer_mit-b0_vanilla-l5_shapes-target-128x128.py'
custom_hooks = [
    dict(
        type='CompressConvHook',
        method='hosvd',
        eps=0.8,
        num_layers=10,
        lean=True,
        lean_eps=dict(norm=0.8, classifier=0.99)),
    dict(type='ActivationMemoryHook')
]
