"""The table the protocol's configs and fine-tuning rows come from.

``tools/make_configs.py`` writes every ``configs/<model>/*.py`` of the
embedded protocol from :data:`TABLE` (see
:mod:`~mmseg_hosvd.protocol.config_writer`): for each model of
:data:`MODELS`, its pretraining and calibration configs, one fine-tuning
config per method setting of :data:`SETTINGS` and layer count of
:data:`LAYER_COUNTS`, and one per peer row of
:data:`~mmseg_hosvd.protocol.peers.PEER_ROWS` and layer count. A new method
setting or model is one entry here, then ``python tools/make_configs.py``;
``tests/test_config_generation.py`` fails while the files on disk differ.
The protocol's fine-tuning tags (:func:`protocol_tags`, the runner's
``--methods``) are read from :data:`SETTINGS` too.

Comments are the text of the config's leading ``#`` lines
(:mod:`~mmseg_hosvd.protocol.config_comments`).
"""
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from ..methods.hosvd import SPATIAL_GRID
from .config_comments import (
    ALLOC_COMMENT,
    ALLOC_KEEPBATCH_COMMENT,
    ALLOC_SPATIAL_COMMENT,
    ALLOC_WHOLE_COMMENT,
    EPS06_COMMENT,
    LEAN_COMMENT,
    LEAN_HEAD,
    MEASURED_BUDGET,
    QACT_COMMENT,
    RESNET_PRETRAIN_COMMENT,
    SUBSPACE_HEAD,
)
from .peers import PEER_ROWS

#: Fine-tuned layer counts of every fine-tuning setting.
LAYER_COUNTS = (5, 10)
#: The fine-tuning batch, split by the accumulation peers (``mb<n>``).
FINETUNE_BATCH = 8
#: Calibration iterations (``schedules/calib_100it.py``).
CALIB_ITERS = 100
#: The setting and layer count every other fine-tuning config inherits.
ROOT_FINETUNE = ('vanilla', 5)


@dataclass(frozen=True)
class Pretraining:
    """A pretraining recipe: its base files and what it sets on top."""
    comment: str
    dataset: str
    schedule: str
    iters: int
    model: Dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Setting:
    """A method setting: the config-name tag and the hook's options (before
    ``num_layers``); ``lean`` adds ``lean=True`` and the model's
    ``lean_eps`` after it. ``extension`` marks a row beyond the paper's
    matrix (the runner runs it only when asked)."""
    tag: str
    method: str
    options: Dict[str, Any] = field(default_factory=dict)
    lean: bool = False
    comment: str = ''
    extension: bool = False


@dataclass(frozen=True)
class Model:
    """A protocol model.

    Attributes:
        folder: Its folder under ``configs/``.
        prefix: Its config-name prefix, also its ``_base_/models`` file.
        pretraining: A key of :data:`PRETRAINING`.
        pretrain_model: ``model`` options of its pretraining config, before
            the recipe's, with ``pretrain_comment`` above them.
        lean_eps: ``lean_eps`` of its lean settings.
        options: Hook options by (tag, layers), added to the setting's; a
            ``layers`` list replaces ``num_layers``.
        comments: Comments by (tag, layers) or tag, replacing the
            setting's.
    """
    folder: str
    prefix: str
    pretraining: str
    pretrain_model: Dict[str, Any] = field(default_factory=dict)
    pretrain_comment: str = ''
    lean_eps: Dict[str, Optional[float]] = field(
        default_factory=lambda: dict(norm=0.8, classifier=0.99))
    options: Dict[tuple, Dict[str, Any]] = field(default_factory=dict)
    comments: Dict[Any, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfigTable:
    """Everything the writer needs: models, settings and peer rows."""
    models: Dict[str, Model]
    settings: Tuple[Setting, ...]
    peer_rows: Tuple[Tuple[str, str], ...] = PEER_ROWS


PRETRAINING = {
    'cnn': Pretraining(
        'Pretraining on the source domain of the generated dataset '
        '(64 x 64 crops).', 'shapes_source_crop64', 'pretrain_cnn_250it', 250,
        dict(data_preprocessor=dict(size=(64, 64)))),
    'transformer': Pretraining(
        'Pretraining on the source domain of the generated dataset.',
        'shapes_source', 'pretrain_400it', 400),
}
RESNET_PRETRAIN = dict(backbone=dict(zero_init_residual=False))

#: The fine-tuning method settings: the paper's rows, then the extensions.
SETTINGS = (
    Setting('vanilla', 'vanilla'),
    Setting('gradfilter', 'gradient_filter'),
    Setting('svd-eps0.8', 'svd', dict(eps=0.8)),
    Setting('hosvd-eps0.8', 'hosvd', dict(eps=0.8)),
    Setting('hosvd-eps0.9', 'hosvd', dict(eps=0.9)),
    Setting('hosvd-eps0.6', 'hosvd', dict(eps=0.6), comment=EPS06_COMMENT,
            extension=True),
    Setting('hosvd-eps0.8-lean', 'hosvd', dict(eps=0.8), lean=True,
            comment=LEAN_COMMENT, extension=True),
    Setting('hosvd-eps-alloc0.8', 'hosvd',
            dict(allocate=dict(budget_of=0.8)), comment=ALLOC_COMMENT,
            extension=True),
    Setting('hosvd-eps-alloc0.8-whole', 'hosvd',
            dict(allocate=dict(budget_of=0.8, criterion='whole')),
            comment=ALLOC_WHOLE_COMMENT, extension=True),
    Setting('hosvd-eps-alloc0.8-whole-keepbatch', 'hosvd', dict(
        keep_batch=True, allocate=dict(budget_of=0.8, criterion='whole')),
        comment=ALLOC_KEEPBATCH_COMMENT, extension=True),
    Setting('hosvd-eps-alloc0.8-whole-keepbatch-spatial', 'hosvd', dict(
        keep_batch=True, allocate=dict(
            budget_of=0.8, criterion='whole',
            spatial_grid=list(SPATIAL_GRID))),
        comment=ALLOC_SPATIAL_COMMENT, extension=True),
    # budget_mb is per model and layer count (Model.options)
    Setting('hosvd-subspace', 'hosvd_subspace', comment=SUBSPACE_HEAD + """\
How it was chosen: HOSVD eps 0.8's mean analytical activation memory for
this model and layer count in one run of the embedded protocol, rounded. It
is not re-measured, so it need not equal HOSVD eps 0.8's mean in another
run.""", extension=True),
    Setting('qact8', 'quantized', dict(bits=8), comment=QACT_COMMENT,
            extension=True),
    Setting('qact2', 'quantized', dict(bits=2), comment=QACT_COMMENT,
            extension=True),
)


def budgets(l5: float, l10: float) -> Dict[tuple, Dict[str, Any]]:
    """The subspace rows' fixed budgets (MB) of a model."""
    return {('hosvd-subspace', 5): dict(budget_mb=l5),
            ('hosvd-subspace', 10): dict(budget_mb=l10)}


def resnet(folder: str, prefix: str, l5: float, l10: float) -> Model:
    """A ResNet-18 model of the protocol."""
    return Model(folder, prefix, 'cnn', RESNET_PRETRAIN,
                 RESNET_PRETRAIN_COMMENT, options=budgets(l5, l10))


def mobilenet(folder: str, prefix: str, l5: float, l10: float) -> Model:
    """A MobileNetV2 model of the protocol."""
    return Model(folder, prefix, 'cnn', options=budgets(l5, l10))


SWIN_GRADFILTER_10 = dict(
    layers=[
        'decode_head.fpn_bottleneck.conv', 'decode_head.fpn_convs.2.conv',
        'decode_head.fpn_convs.1.conv', 'decode_head.fpn_convs.0.conv',
        'decode_head.bottleneck.conv'
    ],
    trainable=[
        'backbone.stages.3.blocks.1.ffn.layers.1',
        'backbone.stages.3.blocks.1.ffn.layers.0.0',
        'backbone.stages.3.blocks.1.attn.w_msa.proj',
        'backbone.stages.3.blocks.1.attn.w_msa.qkv',
        'backbone.stages.3.blocks.0.ffn.layers.1'
    ],
    radius={
        'decode_head.fpn_bottleneck.conv': 8,
        'decode_head.fpn_convs.2.conv': 2,
        'decode_head.fpn_convs.1.conv': 4,
        'decode_head.fpn_convs.0.conv': 8,
        'decode_head.bottleneck.conv': 2
    })

#: The protocol's models by name (the keys of
#: :data:`~mmseg_hosvd.protocol.matrix.MODEL_CONFIGS`).
MODELS = {
    'deeplabv3': resnet('deeplabv3', 'deeplabv3_r18-d8', 0.0907, 0.58),
    'deeplabv3-m': mobilenet('deeplabv3-m', 'deeplabv3_mv2-d8', 0.202, 1.33),
    'pspnet': resnet('pspnet', 'pspnet_r18-d8', 0.0363, 0.396),
    'pspnet-m': mobilenet('pspnet-m', 'pspnet_mv2-d8', 0.0919, 1.14),
    'fcn': resnet('fcn', 'fcn_r18-d8', 0.432, 0.655),
    'upernet': resnet('upernet', 'upernet_r18-d8', 0.0637, 0.0827),
    'segformer': Model(
        'segformer', 'segformer_mit-b0', 'transformer',
        lean_eps=dict(norm=0.8, classifier=None),
        options=budgets(0.166, 0.512),
        comments={
            'hosvd-subspace': MEASURED_BUDGET,
            'hosvd-eps0.8-lean': LEAN_HEAD + """\
BatchNorm keeps nothing full-size. The BN weights get their gradients from
HOSVD forms of their inputs at eps 0.8. The classifier keeps its whole input
(classifier=None): on SegFormer-B0 a HOSVD form at eps 0.99 kept 55% of it
(ranks (8, 217, 25, 25) of (8, 256, 32, 32)) for 22-29 ms per step, and
lowered no whole-step peak (README, "The transformer models")."""}),
    'swin-upernet': Model(
        'swin-upernet', 'upernet_swin-t', 'transformer',
        options={**budgets(0.044, 0.139),
                 ('gradfilter', 10): SWIN_GRADFILTER_10},
        comments={
            'hosvd-subspace': MEASURED_BUDGET,
            ('hosvd-subspace', 10): SUBSPACE_HEAD + """\
How it was chosen: HOSVD eps 0.8's analytical activation memory for this
model and layer count on the first 8 target images from the calibrated
checkpoint, rounded: the 5 convolutions' 0.044 MB as measured by
benchmarks/activation_memory.py --from-protocol, plus 0.0948 MB for the 5
Linear layers, the core and factors of ops.hosvd(eps=0.8) on each one's
(B, N, C) token input (the hook takes Linear layers once their compression
is in; re-measure then). It need not equal HOSVD eps 0.8's mean in a run.""",
            'hosvd-eps0.8-lean': LEAN_COMMENT.replace(
                "protocol lost", "protocol's CNN models lost"),
            ('gradfilter', 10): """\
Gradient Filter at 10 layers: it filters convolutions only, so the preset's
five Linear layers of Swin's last stage (see selection/layer_presets.py) are
fine-tuned uncompressed, as vanilla; the five head convolutions are filtered
with the preset's radii."""}),
}

#: The table ``tools/make_configs.py`` writes.
TABLE = ConfigTable(MODELS, SETTINGS)


def protocol_tags(extensions: bool = True) -> Tuple[str, ...]:
    """Tags of the protocol's fine-tuning settings (:data:`TABLE`'s), in
    table order.

    Args:
        extensions: Also the rows beyond the paper's matrix
            (``Setting.extension``).
    """
    return tuple(s.tag for s in TABLE.settings
                 if extensions or not s.extension)
