# Fixed-rank HOSVD by subspace iteration, ranks allocated on the first batch
# within a fixed budget of 0.139 MB for all fine-tuned layers together.
# How it was chosen: HOSVD eps 0.8's analytical activation memory for this
# model and layer count on the first 8 target images from the calibrated
# checkpoint, rounded: the 5 convolutions' 0.044 MB as measured by
# benchmarks/activation_memory.py --from-protocol, plus 0.0948 MB for the 5
# Linear layers, the core and factors of ops.hosvd(eps=0.8) on each one's
# (B, N, C) token input (the hook takes Linear layers once their compression
# is in; re-measure then). It need not equal HOSVD eps 0.8's mean in a run.
_base_ = './upernet_swin-t_vanilla-l5_shapes-target-128x128.py'
custom_hooks = [
    dict(
        type='CompressConvHook',
        method='hosvd_subspace',
        budget_mb=0.139,
        num_layers=10),
    dict(type='ActivationMemoryHook')
]
