# Pretraining on the source domain of the generated dataset, on 64 x 64 crops
# of its 128 x 128 images (validation on whole images).
_base_ = [
    '../_base_/models/fcn_r18-d8.py', '../_base_/datasets/shapes_source_crop64.py',
    '../_base_/default_runtime.py', '../_base_/schedules/pretrain_340it.py'
]
# mmseg's ResNet zero-initialises the last norm of every residual block; from
# scratch, pretraining leaves those norms near zero, the residual branches
# dead, and fine-tuning the backbone's convolutions changes nothing. Start
# them alive, as in an ImageNet-pretrained backbone.
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    backbone=dict(zero_init_residual=False))
