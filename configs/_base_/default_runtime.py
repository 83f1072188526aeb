# Runtime shared by every config: mmseg scope, this package, CPU-friendly env.
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_hosvd'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='gloo'),
)
# CompressConvHook freezes layers after the model is wrapped for data
# parallelism (at before_train, once checkpoints are loaded), so DDP must
# tolerate parameters that get no gradient.
model_wrapper_cfg = dict(
    type='MMDistributedDataParallel', find_unused_parameters=True)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=233)
