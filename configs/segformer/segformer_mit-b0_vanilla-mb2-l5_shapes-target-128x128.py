# Gradient accumulation: the batch of 8 in 4 micro-batches of 2,
# one optimizer step per iteration (whole_steps), so that the run sees the
# same samples, augmentation and learning rates as its base config.
_base_ = './segformer_mit-b0_vanilla-l5_shapes-target-128x128.py'
train_dataloader = dict(batch_size=2)
optim_wrapper = dict(accumulative_counts=4)
train_cfg = dict(whole_steps=True)
