"""Small real set-ups shared by the integration tests."""
import itertools
import os
import os.path as osp

from mmengine.config import Config
from mmseg.registry import MODELS

from mmseg_hosvd.protocol.matrix import MODEL_CONFIGS, config_path

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = osp.join(ROOT, 'configs')
MODEL_NAMES = sorted(MODEL_CONFIGS)
#: (model, layers) presets of convolutions only: not ('swin-upernet', 10),
#: which names Swin's Linear layers, for the Linear compression (issue #14).
CONV_PRESETS = [(m, n) for m in MODEL_NAMES for n in (5, 10)
                if (m, n) != ('swin-upernet', 10)]
TINY_SIZES = {
    'source': {
        'train': 4,
        'val': 2
    },
    'target': {
        'train': 8,
        'val': 4
    }
}
_counter = itertools.count()


def model_config(model: str) -> Config:
    """The protocol's fine-tuning config of ``model`` (vanilla, 5 layers)."""
    return Config.fromfile(
        config_path(model, 'finetune', 'vanilla', 5, root=CONFIGS))


def build_model(model: str, head_channels: int = 32):
    """The segmentor of a protocol model, with a narrower decode head."""
    cfg = model_config(model)
    cfg.model.decode_head.channels = head_channels
    return MODELS.build(cfg.model)


def _shrink_pipelines(cfg: Config, size: int) -> None:
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg[key]
        loader.batch_size = 2
        loader.num_workers = 0
        loader.persistent_workers = False
        for step in loader.dataset.pipeline:
            if step['type'] in ('RandomResize', 'Resize'):
                step['scale'] = (size, size)
            if step['type'] == 'RandomCrop':
                step['crop_size'] = (size, size)


def tiny_runner_config(model: str,
                       work_dir: str,
                       data_root: str,
                       hooks=None,
                       max_iters: int = 2,
                       size: int = 64,
                       config: str = None) -> Config:
    """A protocol config shrunk to a 2-iteration CPU run on tiny data.

    Args:
        model: Protocol model name.
        work_dir: Work dir of the run.
        data_root: Root of a generated dataset (its target domain is used).
        hooks: ``custom_hooks``; the config's own when None.
        max_iters: Training iterations (checkpoint and validation at the
            end).
        size: Crop and test size.
        config: A config path to start from instead of vanilla-l5.

    Returns:
        The config, with a unique experiment name.
    """
    cfg = Config.fromfile(config) if config else model_config(model)
    cfg.work_dir = work_dir
    cfg.experiment_name = f'test_{model}_{next(_counter)}'
    cfg.load_from = None
    cfg.model.decode_head.channels = 32
    cfg.model.data_preprocessor.size = (size, size)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = osp.join(data_root, 'target')
    _shrink_pipelines(cfg, size)
    cfg.train_cfg.max_iters = max_iters
    cfg.train_cfg.val_interval = max_iters
    cfg.default_hooks.checkpoint.interval = max_iters
    cfg.default_hooks.logger.interval = 1
    if hooks is not None:
        cfg.custom_hooks = hooks
    return cfg


class RunsCommand:
    """Pickles as a call of ``os.system``: unpickling it runs ``command``."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command, )


#: How the weights-only unpickler names ``os.system``.
SYSTEM_GLOBAL = f'{os.system.__module__}.system'


def write_checkpoint(config: str, path: str) -> None:
    """A checkpoint file as MMEngine writes one for ``config``: its meta
    records the config it was trained with (no weights)."""
    import torch
    os.makedirs(osp.dirname(path), exist_ok=True)
    torch.save(dict(meta=dict(cfg=Config.fromfile(config).pretty_text),
                    state_dict={}), path)
