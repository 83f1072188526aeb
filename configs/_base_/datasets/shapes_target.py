# Generated shapes dataset, target domain (calibration and fine-tuning): the
# source config with the target's data root.
# Generate it with: python tools/generate_dataset.py
_base_ = ['./shapes_source.py']
data_root = 'data/synthetic_shapes/target'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
