# Pretraining on the source domain of the generated dataset (64 x 64 crops).
_base_ = [
    '../_base_/models/deeplabv3_r18-d8.py', '../_base_/datasets/shapes_source_crop64.py',
    '../_base_/default_runtime.py', '../_base_/schedules/pretrain_cnn_400it.py'
]
# mmseg's ResNet zero-initialises the last norm of each residual block; after
# 400 steps those norms are still near zero (|gamma| ~ 0.03 in layer4) and the
# fine-tuned backbone convolutions behind them cannot change the output.
# Initialised as torchvision's ResNet is, the branches train.
model = dict(
    backbone=dict(zero_init_residual=False),
    data_preprocessor=dict(size=(64, 64)))
