# Pretraining on the source domain: 400 iterations, 20 of warm-up.
_base_ = ['./sgd_cosine.py']
train_cfg = dict(type='SeededIterBasedTrainLoop', max_iters=400, val_interval=400)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(
        type='CosineAnnealingLR',
        T_max=380,
        eta_min=1e-4,
        by_epoch=False,
        begin=20,
        end=400)
]
default_hooks = dict(checkpoint=dict(interval=400))
