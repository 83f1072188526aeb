# Mixed precision: the forward under bfloat16 autocast (also on CUDA); the
# decompositions run in float32.
_base_ = './segformer_mit-b0_hosvd-eps0.8-lean-l10_shapes-target-128x128.py'
optim_wrapper = dict(type='AutocastOptimWrapper', dtype='bfloat16')
