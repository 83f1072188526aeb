# Step 3: fine-tune the last 5 layers on VOC12Aug with HOSVD eps 0.8.
# The Cityscapes classifier (19 classes) does not fit VOC's 21: load the
# calibrated checkpoint, which has the VOC classifier.
_base_ = ['./deeplabv3_r18-d8_calib_voc12aug-512x512.py']
load_from = 'work_dirs/deeplabv3_r18-d8_calib_voc12aug-512x512/iter_20000.pth'
custom_hooks = [
    dict(type='CompressConvHook', method='hosvd', eps=0.8, num_layers=5),
    dict(type='ActivationMemoryHook')
]
