# Fixed-rank HOSVD by subspace iteration, ranks allocated on the first batch
# within a budget equal to the mean activation memory that HOSVD eps 0.8
# used for this model and layer count on the embedded protocol
# (0.0919 MB, from its test_results.json).
_base_ = './pspnet_mv2-d8_vanilla-l5_shapes-target-128x128.py'
custom_hooks = [
    dict(
        type='CompressConvHook',
        method='hosvd_subspace',
        budget_mb=0.0919,
        num_layers=5),
    dict(type='ActivationMemoryHook')
]
