"""Refuse a ``load_from`` checkpoint that belongs to another model."""
import os.path as osp

from mmengine.hooks import Hook
from mmengine.runner import find_latest_checkpoint
from mmseg.registry import HOOKS
from torch import nn

from ...selection.layer_presets import CLASSIFIER
from .unwrap import unwrap_model


def check_checkpoint_fits(model: nn.Module, checkpoint: dict,
                          source: str) -> None:
    """Checks that a checkpoint holds this model's weights.

    Every parameter and buffer of the model but the classifier (whose class
    count may differ between datasets) must be in the checkpoint with the
    same shape; otherwise mmengine would load it partially, and fine-tuning
    would silently start from random layers.

    Args:
        model: The (unwrapped) model.
        checkpoint: The loaded checkpoint.
        source: Its path, for the message.

    Raises:
        ValueError: Naming the checkpoint and the first mismatches.
    """
    state = checkpoint.get('state_dict', checkpoint)
    state = {k[len('module.'):] if k.startswith('module.') else k: v
             for k, v in state.items()}
    expected = {
        k: v
        for k, v in model.state_dict().items()
        if not k.startswith(CLASSIFIER + '.')
    }
    missing = [k for k in expected if k not in state]
    mismatched = [
        k for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if missing or mismatched:
        examples = (missing + mismatched)[:3]
        raise ValueError(
            f'{source} does not fit this model: {len(missing)} missing and '
            f'{len(mismatched)} differently shaped of {len(expected)} '
            f'entries (e.g. {examples}); it is a checkpoint of another '
            'model. Load the checkpoint that this model\'s pretraining or '
            'calibration config wrote.')


def loaded_checkpoint_path(runner) -> str:
    """The path of the checkpoint the runner loads or resumes.

    ``runner._load_from`` when set (``load_from``, or a resume that names
    what it resumes), else what ``last_checkpoint`` in the work dir names
    (MMEngine's auto-resume), else ``cfg.load_from``.

    Args:
        runner: The runner.

    Returns:
        The path, or 'the checkpoint' when none of them names one.
    """
    named = getattr(runner, '_load_from', None)
    if not named and osp.isfile(osp.join(runner.work_dir, 'last_checkpoint')):
        named = find_latest_checkpoint(runner.work_dir)
    return named or runner.cfg.get('load_from', None) or 'the checkpoint'


@HOOKS.register_module()
class CheckpointFitHook(Hook):
    """Stops a run whose ``load_from`` (or resumed) checkpoint does not fit.

    The protocol's configs set it in ``default_hooks`` (key
    ``checkpoint_fit``), so a config with its own ``custom_hooks`` keeps it.
    """

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Checks the checkpoint against the model.

        Args:
            runner: The runner.
            checkpoint: The loaded checkpoint.

        Raises:
            ValueError: From :func:`check_checkpoint_fits`.
        """
        check_checkpoint_fits(unwrap_model(runner.model), checkpoint,
                              loaded_checkpoint_path(runner))
