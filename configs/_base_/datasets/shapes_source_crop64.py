# The source domain with 64 x 64 training crops, for cheap pretraining: a
# step costs about a quarter of a 128 x 128 one, so more steps fit in the
# same time. Validation stays on whole 128 x 128 images. Configs using it
# set their data preprocessor's size to crop_size (no padding to 128).
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
