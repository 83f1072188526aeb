# The source domain in 64 x 64 crops, for the CNNs' pretraining: a quarter of
# the compute of 128 x 128 crops per step, towards `make demo`'s 10-minute
# budget on the slower 2-core machines. Configs using it set
# model.data_preprocessor.size = (64, 64).
_base_ = ['./shapes_source.py']
crop_size = (64, 64)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=(128, 128),
        ratio_range=(0.75, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.9),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
