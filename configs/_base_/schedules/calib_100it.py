# Classifier calibration on the target domain: 100 iterations, 5 of warm-up.
_base_ = ['./sgd_cosine.py']
train_cfg = dict(type='SeededIterBasedTrainLoop', max_iters=100, val_interval=100)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=5),
    dict(
        type='CosineAnnealingLR',
        T_max=95,
        eta_min=1e-4,
        by_epoch=False,
        begin=5,
        end=100)
]
default_hooks = dict(checkpoint=dict(interval=100))
