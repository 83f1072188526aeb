# Fixed-rank HOSVD by subspace iteration, ranks allocated on the first batch
# within a fixed budget of 0.166 MB for all fine-tuned layers together.
# How it was chosen: HOSVD eps 0.8's analytical activation memory for this
# model and layer count on the first 8 target images from the calibrated
# checkpoint (benchmarks/activation_memory.py --from-protocol), rounded. It
# is not re-measured, so it need not equal HOSVD eps 0.8's mean in a run.
_base_ = './segformer_mit-b0_vanilla-l5_shapes-target-128x128.py'
custom_hooks = [
    dict(
        type='CompressConvHook',
        method='hosvd_subspace',
        budget_mb=0.166,
        num_layers=5),
    dict(type='ActivationMemoryHook')
]
