"""Distributed training on CPUs with MMEngine's pytorch launcher."""
import torch
import torch.distributed as dist
from mmengine.config import Config


def prepare_cpu_distributed(cfg: Config, backend: str = 'gloo') -> bool:
    """Makes ``--launcher pytorch`` work without CUDA.

    MMEngine's pytorch launcher calls ``torch.cuda.set_device`` and gives
    DistributedDataParallel ``device_ids=[LOCAL_RANK]``; a CPU-only torch
    supports neither. Without a GPU, the process group is started here from
    torchrun's environment (the Runner then finds it initialised), and the
    model wrapper gets ``device_ids=None``, as DDP needs for CPU modules.

    Args:
        cfg: The config; ``cfg.model_wrapper_cfg`` is updated in place.
        backend: Backend on CPU.

    Returns:
        True if it prepared a CPU run.
    """
    if cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available():
        return False
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    wrapper = cfg.get('model_wrapper_cfg', None) or dict(
        type='MMDistributedDataParallel')
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    return True
