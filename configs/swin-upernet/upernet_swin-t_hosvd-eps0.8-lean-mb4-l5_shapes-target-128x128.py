# Gradient accumulation: the batch of 8 in 2 micro-batches of 4,
# one optimizer step per iteration (whole_steps), so that the run sees the
# same samples, augmentation and learning rates as its base config.
_base_ = './upernet_swin-t_hosvd-eps0.8-lean-l5_shapes-target-128x128.py'
train_dataloader = dict(batch_size=4)
optim_wrapper = dict(accumulative_counts=2)
train_cfg = dict(whole_steps=True)
