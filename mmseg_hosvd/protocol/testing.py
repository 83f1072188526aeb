"""Testing a checkpoint as ``tools/test.py`` does, for every tool.

``tools/test.py`` is the command line over :func:`build_test_config` and
:func:`run_test`; ``tools/train.py --test`` calls them in its own process.
"""
import json
import os
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.runner import Runner

from ..checkpoints.trust import config_trusts_checkpoints, trusted_checkpoints
from ..engine.config_checks import check_data_roots
from ..engine.cpu_distributed import prepare_cpu_distributed
from .reporting import checkpoint_record


def trigger_visualization_hook(cfg: Config, show: bool = False,
                               show_dir: Optional[str] = None,
                               wait_time: float = 2) -> Config:
    """Turns on SegVisualizationHook for ``--show`` / ``--show-dir``."""
    default_hooks = cfg.default_hooks
    if 'visualization' not in default_hooks:
        raise RuntimeError(
            'VisualizationHook must be included in default_hooks; '
            "refer to usage '\"visualization=dict(type="
            "'VisualizationHook')\"'")
    visualization_hook = default_hooks['visualization']
    visualization_hook['draw'] = True
    if show:
        visualization_hook['show'] = True
        visualization_hook['wait_time'] = wait_time
    if show_dir:
        visualizer = cfg.visualizer
        visualizer['save_dir'] = show_dir
    return cfg


def build_test_config(config: str,
                      checkpoint: str,
                      work_dir: Optional[str] = None,
                      launcher: str = 'none',
                      cfg_options: Optional[dict] = None,
                      out: Optional[str] = None,
                      show: bool = False,
                      show_dir: Optional[str] = None,
                      wait_time: float = 2,
                      tta: bool = False) -> Config:
    """Loads the test config of ``checkpoint`` with the tool's flags applied.

    Args:
        config: The config file.
        checkpoint: The checkpoint tested (``load_from``; never resumed).
        work_dir: The work dir, or None for the config's (or
            ``./work_dirs/<config name>``).
        launcher: MMEngine's launcher.
        cfg_options: Settings merged into the config.
        out: Where the predictions are kept for offline evaluation.
        show: Whether the predictions are shown.
        show_dir: Where painted predictions are saved.
        wait_time: Seconds each shown prediction stays.
        tta: Whether the config's test-time augmentation runs.
    """
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    cfg.load_from = checkpoint
    cfg.resume = False
    if show or show_dir:
        cfg = trigger_visualization_hook(cfg, show, show_dir, wait_time)
    if tta:
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if out is not None:
        cfg.test_evaluator['output_dir'] = out
        cfg.test_evaluator['keep_results'] = True
    return cfg


def run_test(cfg: Config, config: str, checkpoint: str) -> Optional[dict]:
    """Tests ``checkpoint`` with the built ``cfg``; the main process writes
    ``<work_dir>/test_results.json`` (the tools print the record with
    :func:`.reporting.format_test_report`).

    Args:
        cfg: The test config (see :func:`build_test_config`).
        config: The config file, named in the record.
        checkpoint: The checkpoint file.

    Returns:
        The record (see :func:`.reporting.checkpoint_record`) in the main
        process, None in the others.
    """
    check_data_roots(cfg, loaders=('test_dataloader', ))
    prepare_cpu_distributed(cfg)
    with trusted_checkpoints(config_trusts_checkpoints(cfg)):
        runner = Runner.from_cfg(cfg)
        metrics = runner.test()
        if not is_main_process():
            return None
        record = checkpoint_record(config, checkpoint, metrics)
    os.makedirs(cfg.work_dir, exist_ok=True)
    # whole or not at all: a resumed protocol reads it
    path = osp.join(cfg.work_dir, 'test_results.json')
    with open(path + '.tmp', 'w') as f:
        json.dump(record, f, indent=2)
    os.replace(path + '.tmp', path)
    return record
