# Fine-tuning the last 5 layers on the target domain, without compression.
# Every other fine-tuning config of this model inherits this one.
_base_ = [
    '../_base_/models/upernet_swin-t.py', '../_base_/datasets/shapes_target.py',
    '../_base_/default_runtime.py', '../_base_/schedules/finetune_120it.py'
]
load_from = 'work_dirs/upernet_swin-t_calib_shapes-target-128x128/iter_100.pth'
custom_hooks = [
    dict(type='CompressConvHook', method='vanilla', num_layers=5),
    dict(type='ActivationMemoryHook')
]
