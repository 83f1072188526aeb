# Pretraining on the source domain of the generated dataset (64 x 64 crops).
_base_ = [
    '../_base_/models/pspnet_mv2-d8.py', '../_base_/datasets/shapes_source_crop64.py',
    '../_base_/default_runtime.py', '../_base_/schedules/pretrain_cnn_250it.py'
]
model = dict(data_preprocessor=dict(size=(64, 64)))
