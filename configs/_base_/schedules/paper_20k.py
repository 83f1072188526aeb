# The paper's fine-tuning schedule: 20k iterations, 1k of linear warm-up,
# cosine to 1e-4 (for real datasets on a GPU).
_base_ = ['./sgd_cosine.py']
train_cfg = dict(type='SeededIterBasedTrainLoop', max_iters=20000, val_interval=2000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=1000),
    dict(
        type='CosineAnnealingLR',
        T_max=19000,
        eta_min=1e-4,
        by_epoch=False,
        begin=1000,
        end=20000)
]
default_hooks = dict(checkpoint=dict(interval=2000))
