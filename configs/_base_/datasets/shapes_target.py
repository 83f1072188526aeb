# Generated shapes dataset, target domain (calibration and fine-tuning): the
# source config with the target's data root and classes (the source's five
# and three new ones; a model on it needs decode_head num_classes=8).
# Generate it with: python tools/generate_dataset.py
_base_ = ['./shapes_source.py']
dataset_type = 'SyntheticShapesTargetDataset'
data_root = 'data/synthetic_shapes/target'
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
