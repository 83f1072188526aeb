"""The real datasets the protocol's models have configs for (data only).

:mod:`~mmseg_hosvd.protocol.real_dataset_configs` writes, for every model of
:data:`~mmseg_hosvd.protocol.config_table.MODELS`, the paper's chain on
these datasets under ``configs/paper/<model folder>/``: pretraining on
:data:`SOURCE`, then per dataset of :data:`TARGETS` a calibration and one
fine-tuning config per method setting and layer count of the table.
"""
from dataclasses import dataclass
from typing import Any, Dict, Tuple


@dataclass(frozen=True)
class RealDataset:
    """A real dataset in mmseg's layout.

    Attributes:
        base: Its file under ``configs/_base_/datasets/`` (no ``.py``).
        suffix: The config-name suffix (dataset and crop).
        label: Its name in the configs' comments.
        num_classes: The classes the classifier predicts.
        crop: The training crop (height, width), also the size the data
            preprocessor pads training batches to.
    """
    base: str
    suffix: str
    label: str
    num_classes: int
    crop: Tuple[int, int]


@dataclass(frozen=True)
class RealChange:
    """What a method setting changes in its hook on real data.

    Attributes:
        options: Hook options replacing the embedded config's; None
            removes one.
        comment: The config's comment, replacing the setting's.
    """
    options: Dict[str, Any]
    comment: str


#: The pretraining dataset.
SOURCE = RealDataset('cityscapes', 'cityscapes-512x1024', 'Cityscapes', 19,
                     (512, 1024))
#: The fine-tuning datasets.
TARGETS = (
    RealDataset('voc12aug', 'voc12aug-512x512', 'VOC12Aug', 21, (512, 512)),
    RealDataset('ade20k', 'ade20k-512x512', 'ADE20K', 150, (512, 512)),
)
#: The schedule of every stage (``schedules/paper_20k.py``) and its length.
SCHEDULE = 'paper_20k'
ITERS = 20000
#: The folder under ``configs/``, holding one folder per model.
FOLDER = 'paper'
#: Hooks the fine-tuning configs add to ``default_hooks``, as
#: ``schedules/finetune_120it.py`` does for the embedded protocol.
FINETUNE_HOOKS = dict(
    step_peak=dict(type='StepPeakMemoryHook', iteration=10),
    weight_change=dict(type='WeightChangeHook'))

PRETRAIN_COMMENT = """\
The paper's protocol on real data, step 1: pretrain on {label}
({num_classes} classes, {crop[0]} x {crop[1]} crops)."""
CALIB_COMMENT = """\
Step 2: calibrate the classifier on {label} ({num_classes} classes);
only conv_seg trains. It starts from the {source} checkpoint, whose
classifier has another class count and is not loaded (CheckpointFitHook
lets exactly the classifier differ)."""
ROOT_COMMENT = """\
Step 3: fine-tune the last 5 layers on {label}, without compression, from
the calibrated checkpoint (it has the {label} classifier). Every other
{label} fine-tuning config of this model inherits this one."""
FINETUNE_COMMENT = 'Step 3: fine-tune the last {layers} layers on {label}.'

#: Settings whose hook differs on real data, by tag.
REAL_CHANGES = {
    'hosvd-subspace': RealChange(
        dict(budget_mb=None, eps=0.8), """\
Fixed-rank HOSVD by subspace iteration, ranks from eps 0.8 on the first
batch: the embedded protocol's fixed budgets were chosen for its 128 x 128
images and do not carry over to these crops."""),
}
