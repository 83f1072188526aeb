"""The embedded protocol: generate data, pretrain, calibrate, fine-tune, test.

Each stage is one ``tools/train.py`` or ``tools/test.py`` process on a config
of ``configs/``; a stage whose final checkpoint (or test record) exists and
is up to date (:func:`stale_reason`) is skipped, so an interrupted protocol
resumes where it stopped.
"""
import json
import os
import os.path as osp
import pickle
import subprocess
import sys
from typing import Callable, List, Optional

from mmengine.config import Config

from .config_drift import changed_keys, trained_config
from .datasets import DEFAULT_SIZES, generate
from .datasets.synthetic_shapes import STAMP_NAME, generation_stamp, read_stamp
from .methods import protocol_tags
from .protocol_peers import peer_tags

#: Protocol model name -> (config folder, config prefix).
MODEL_CONFIGS = {
    'deeplabv3': ('deeplabv3', 'deeplabv3_r18-d8'),
    'deeplabv3-m': ('deeplabv3-m', 'deeplabv3_mv2-d8'),
    'pspnet': ('pspnet', 'pspnet_r18-d8'),
    'pspnet-m': ('pspnet-m', 'pspnet_mv2-d8'),
    'fcn': ('fcn', 'fcn_r18-d8'),
    'upernet': ('upernet', 'upernet_r18-d8'),
    'segformer': ('segformer', 'segformer_mit-b0'),
    'swin-upernet': ('swin-upernet', 'upernet_swin-t'),
}
#: The paper's six CNN models, the default matrix of tools/run_protocol.py;
#: the transformers are opt-in (``--models segformer swin-upernet``).
PAPER_MODELS = ('deeplabv3', 'deeplabv3-m', 'pspnet', 'pspnet-m', 'fcn',
                'upernet')
SOURCE_SUFFIX = 'shapes-source-128x128'
#: Where the protocol's configs read the generated dataset (relative to the
#: working directory, as their ``data_root``).
DATA_ROOT = 'data/synthetic_shapes'
#: ``--cfg-options`` that train without validating. MMEngine validates at
#: the last iteration whatever ``val_interval`` says; without a validation
#: loop it does not.
NO_VALIDATION = ['val_cfg=None', 'val_dataloader=None', 'val_evaluator=None']
TARGET_SUFFIX = 'shapes-target-128x128'


def config_path(model: str,
                stage: str,
                method: Optional[str] = None,
                layers: Optional[int] = None,
                root: str = 'configs') -> str:
    """Path of a protocol config.

    Args:
        model: A key of :data:`MODEL_CONFIGS`.
        stage: 'pretrain', 'calib' or 'finetune'.
        method: For 'finetune', a tag of
            :func:`~mmseg_hosvd.methods.protocol_tags` (e.g.
            'hosvd-eps0.8') or of
            :func:`~mmseg_hosvd.protocol_peers.peer_tags` (e.g.
            'vanilla-mb1').
        layers: For 'finetune', 5 or 10.
        root: The configs folder.

    Returns:
        The config path.

    Raises:
        ValueError: For an unknown model, stage, method or layer count.
    """
    if model not in MODEL_CONFIGS:
        raise ValueError(f'unknown model {model!r}; choose one of '
                         f'{sorted(MODEL_CONFIGS)}')
    folder, prefix = MODEL_CONFIGS[model]
    if stage == 'pretrain':
        name = f'{prefix}_pretrain_{SOURCE_SUFFIX}'
    elif stage == 'calib':
        name = f'{prefix}_calib_{TARGET_SUFFIX}'
    elif stage == 'finetune':
        tags = protocol_tags() + peer_tags()
        if method not in tags:
            raise ValueError(f'unknown method {method!r}; choose one of '
                             f'{list(tags)}')
        if layers not in (5, 10):
            raise ValueError(f'layers must be 5 or 10, got {layers!r}')
        name = f'{prefix}_{method}-l{layers}_{TARGET_SUFFIX}'
    else:
        raise ValueError(f"stage must be 'pretrain', 'calib' or 'finetune', "
                         f'got {stage!r}')
    return osp.join(root, folder, f'{name}.py')


def work_dir(config: str, work_root: str = 'work_dirs') -> str:
    """The work dir tools/train.py uses for ``config`` by default."""
    return osp.join(work_root, osp.splitext(osp.basename(config))[0])


def final_checkpoint(config: str, work_root: str = 'work_dirs') -> str:
    """Path of the checkpoint written at the config's last iteration."""
    max_iters = Config.fromfile(config).train_cfg.max_iters
    return osp.join(work_dir(config, work_root), f'iter_{max_iters}.pth')


def dataset_ready(root: str,
                  sizes: Optional[dict] = None,
                  image_size: int = 128) -> bool:
    """Whether ``root`` holds the dataset that this generator writes with
    these arguments and seed 0 (its stamp says so: version, sizes, image
    size, seed)."""
    sizes = DEFAULT_SIZES if sizes is None else sizes
    return read_stamp(root) == generation_stamp(sizes, image_size, 0)


def ensure_dataset(root: str,
                   log: Callable[[str], None],
                   sizes: Optional[dict] = None,
                   image_size: int = 128) -> None:
    """Generates the embedded dataset unless it is already there.

    A dataset by another generator version, with other arguments, or whose
    generation was interrupted is generated again; the checkpoints trained
    on it are then older than its stamp, and :func:`ensure_trained` trains
    them again.

    Args:
        root: Dataset root.
        log: Receives progress messages.
        sizes: Images per domain and split (the default sizes when None).
        image_size: Side of the images.
    """
    if dataset_ready(root, sizes, image_size):
        log(f'dataset: reusing {root}')
        return
    stamp = read_stamp(root)
    if stamp is not None or osp.isdir(osp.join(root, 'source')):
        found = 'no stamp' if stamp is None else (
            f"version {stamp.get('version')}, image size "
            f"{stamp.get('image_size')}, sizes {stamp.get('sizes')}")
        log(f'dataset: {root} is not what this generator writes ({found}); '
            'generating it again')
    else:
        log(f'dataset: generating {root}')
    count = generate(root, sizes, image_size)
    log(f'dataset: wrote {count} images')


def stale_reason(config: str, checkpoint: str) -> Optional[str]:
    """Why an existing final checkpoint of ``config`` must be trained again.

    As ``make`` does with its inputs: it is stale when older than the stamp
    of the generated dataset it trains on (``generated.json`` next to the
    domain folder of ``train_dataloader.dataset.data_root``) or than the
    checkpoint it starts from (``load_from``). Like ``make``, it goes by
    file times there: copies that do not keep them can trigger or miss a
    retraining. It is also stale when the config it was trained with
    (recorded in the checkpoint) differs from ``config`` in what defines
    training (:data:`~mmseg_hosvd.config_drift.TRAINING_KEYS`), or when
    the checkpoint cannot be read.

    Returns:
        The reason, or None when the checkpoint is up to date.
    """
    cfg = Config.fromfile(config)
    made = osp.getmtime(checkpoint)
    data_root = cfg.train_dataloader.dataset.get('data_root')
    if data_root:
        stamp = osp.join(osp.dirname(osp.normpath(data_root)), STAMP_NAME)
        if osp.isfile(stamp) and osp.getmtime(stamp) > made:
            return f'older than the dataset {stamp}'
    load_from = cfg.get('load_from')
    if load_from and osp.isfile(load_from) and osp.getmtime(load_from) > made:
        return f'older than the checkpoint it starts from, {load_from}'
    try:
        trained = trained_config(checkpoint)
    except (EOFError, RuntimeError, pickle.UnpicklingError) as error:
        # empty, truncated, or not a checkpoint the allowlist loads: never
        # unpickled fully, trained again
        return f'unreadable ({type(error).__name__}: {error})'
    changed = [] if trained is None else changed_keys(cfg, trained)
    if changed:
        return (f'trained with another {", ".join(changed)} than {config} '
                'has now')
    return None


def run_tool(args: List[str], log_file: str,
             log: Callable[[str], None]) -> None:
    """Runs a tools/ script, logging to a file and echoing progress lines.

    Args:
        args: The script and its arguments.
        log_file: Where the full output goes.
        log: Receives the progress lines (iterations, metrics).

    Raises:
        RuntimeError: If the process fails; the message holds the end of
            its output.
    """
    os.makedirs(osp.dirname(log_file) or '.', exist_ok=True)
    tail: List[str] = []
    with open(log_file, 'w') as out:
        process = subprocess.Popen([sys.executable] + args,
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT,
                                   text=True)
        for line in process.stdout:
            out.write(line)
            tail = (tail + [line])[-40:]
            if 'Iter(' in line or 'mIoU:' in line:
                log('  ' + line.split(' - INFO - ')[-1].strip()[:150])
        code = process.wait()
    if code != 0:
        raise RuntimeError(f'{" ".join(args)} failed (exit {code}); log: '
                           f'{log_file}\n' + ''.join(tail))


def ensure_trained(config: str, log: Callable[[str], None],
                   force: bool = False, validate: bool = True) -> str:
    """Trains ``config`` unless its final checkpoint exists and is up to
    date (see :func:`stale_reason`).

    Args:
        config: The config to train.
        log: Receives progress messages.
        force: Train again even if the checkpoint is up to date.
        validate: Run the config's validation during training; callers
            that test the final checkpoint next pass False (the same
            numbers, computed once).

    Returns:
        The final checkpoint path.
    """
    checkpoint = final_checkpoint(config)
    if osp.isfile(checkpoint) and not force:
        reason = stale_reason(config, checkpoint)
        if reason is None:
            log(f'train: reusing {checkpoint}')
            return checkpoint
        log(f'train: {checkpoint} is {reason}; training again')
    args = ['tools/train.py', config]
    if not validate:
        args += ['--cfg-options'] + NO_VALIDATION
    log(f"train: python {' '.join(args)}")
    run_tool(args, osp.join(work_dir(config), 'train.log'), log)
    if not osp.isfile(checkpoint):
        raise RuntimeError(f'{config} finished without writing {checkpoint}')
    return checkpoint


def ensure_tested(config: str, checkpoint: str, log: Callable[[str], None],
                  force: bool = False) -> dict:
    """Tests ``checkpoint`` unless a record for it exists.

    Returns:
        The test record (see :func:`mmseg_hosvd.reporting.checkpoint_record`).
    """
    record_path = osp.join(work_dir(config), 'test_results.json')
    if osp.isfile(record_path) and not force:
        with open(record_path) as f:
            record = json.load(f)
        if record.get('checkpoint') == checkpoint and osp.getmtime(
                record_path) >= osp.getmtime(checkpoint):
            log(f'test: reusing {record_path}')
            return record
    log(f'test: python tools/test.py {config} {checkpoint}')
    run_tool(['tools/test.py', config, checkpoint],
             osp.join(work_dir(config), 'test.log'), log)
    with open(record_path) as f:
        return json.load(f)
