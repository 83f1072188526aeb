# The paper's protocol on real data, step 1: pretrain on Cityscapes.
_base_ = [
    '../_base_/models/deeplabv3_r18-d8.py', '../_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py', '../_base_/schedules/paper_20k.py'
]
model = dict(
    data_preprocessor=dict(size=(512, 1024)),
    decode_head=dict(num_classes=19))
