# Step 2: calibrate the classifier on VOC12Aug.
_base_ = [
    '../_base_/models/deeplabv3_r18-d8.py', '../_base_/datasets/voc12aug.py',
    '../_base_/default_runtime.py', '../_base_/schedules/paper_20k.py'
]
model = dict(
    data_preprocessor=dict(size=(512, 512)),
    decode_head=dict(num_classes=21))
load_from = 'work_dirs/deeplabv3_r18-d8_pretrain_cityscapes-512x1024/iter_20000.pth'
custom_hooks = [dict(type='CompressConvHook', method='vanilla', num_layers=0)]
