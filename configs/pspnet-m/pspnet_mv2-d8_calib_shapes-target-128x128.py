# Calibration: only the classifier (conv_seg) trains on the target domain.
_base_ = [
    '../_base_/models/pspnet_mv2-d8.py', '../_base_/datasets/shapes_target.py',
    '../_base_/default_runtime.py', '../_base_/schedules/calib_100it.py'
]
load_from = 'work_dirs/pspnet_mv2-d8_pretrain_shapes-source-128x128/iter_250.pth'
custom_hooks = [dict(type='CompressConvHook', method='vanilla', num_layers=0)]
