# Pretraining on the source domain of the generated dataset.
_base_ = [
    '../_base_/models/fcn_r18-d8.py', '../_base_/datasets/shapes_source.py',
    '../_base_/default_runtime.py', '../_base_/schedules/pretrain_400it.py'
]
