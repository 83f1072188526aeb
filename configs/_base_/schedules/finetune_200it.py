# Fine-tuning the last N layers on the target domain: 200 iterations, 10 of warm-up.
_base_ = ['./sgd_cosine.py']
train_cfg = dict(type='IterBasedTrainLoop', max_iters=200, val_interval=200)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10),
    dict(
        type='CosineAnnealingLR',
        T_max=190,
        eta_min=1e-4,
        by_epoch=False,
        begin=10,
        end=200)
]
default_hooks = dict(checkpoint=dict(interval=200))
