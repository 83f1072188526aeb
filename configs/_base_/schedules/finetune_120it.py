# Fine-tuning the last N layers on the target domain: 120 iterations, 6 of
# warm-up (sized so that the whole protocol matrix runs in under 90 minutes
# on 2 CPU cores).
_base_ = ['./sgd_cosine.py']
train_cfg = dict(type='SeededIterBasedTrainLoop', max_iters=120, val_interval=120)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=6),
    dict(
        type='CosineAnnealingLR',
        T_max=114,
        eta_min=1e-4,
        by_epoch=False,
        begin=6,
        end=120)
]
# the whole-step peak memory (what decides whether fine-tuning fits), from one
# profiled iteration, kept with the checkpoint for tools/test.py and compare.py
default_hooks = dict(
    checkpoint=dict(interval=120),
    step_peak=dict(type='StepPeakMemoryHook', iteration=10),
    # how far each fine-tuned convolution moved, and how much of that was
    # its gradient rather than weight decay: evidence that every one learned
    weight_change=dict(type='WeightChangeHook'))
