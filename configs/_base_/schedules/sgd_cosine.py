# The protocol's schedule (see docs/design.md), scaled for 2 CPU cores:
# SGD lr 0.01, momentum 0.9, wd 5e-4, grad-norm clip 1, linear warm-up over
# the first 5% of iterations, cosine to 1e-4. Configs set `iters`-dependent
# fields: train_cfg.max_iters, param_scheduler ends, checkpoint interval.
# They train with SeededIterBasedTrainLoop, whose random draws (augmentation,
# dropout) are seeded from the seed and the iteration or sample number, so that
# a --resume'd run ends with the same weights as an uninterrupted one.
optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=optimizer,
    clip_grad=dict(max_norm=1, norm_type=2))
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # writes before it rotates, never half a file; resume=True continues
    # this work dir's run, whatever load_from says
    checkpoint=dict(
        type='SafeCheckpointHook', by_epoch=False, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'),
    # per-batch HOSVD ranks fragment glibc's heap; trimming keeps RSS flat
    malloc_trim=dict(type='MallocTrimHook', interval=50),
    # guards, here rather than in custom_hooks so that a config setting its
    # own custom_hooks keeps them: refuse a load_from checkpoint of another
    # model, stop at a non-finite loss before it is checkpointed
    checkpoint_fit=dict(type='CheckpointFitHook'),
    # which checkpoint the run started from, so that compare.py pairs
    # seeds only between runs from the same one
    start_checkpoint=dict(type='StartCheckpointHook'),
    finite_loss=dict(type='FiniteLossHook'),
    data_check=dict(type='DataCheckHook'))
