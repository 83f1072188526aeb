# Gradient accumulation: the batch of 8 in 8 micro-batches of 1,
# one optimizer step per iteration (whole_steps), so that the run sees the
# same samples, augmentation and learning rates as its base config.
_base_ = './segformer_mit-b0_hosvd-eps0.8-lean-l10_shapes-target-128x128.py'
train_dataloader = dict(batch_size=1)
optim_wrapper = dict(accumulative_counts=8)
train_cfg = dict(whole_steps=True)
