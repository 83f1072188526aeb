"""Engine components: hooks, optimizer wrapper, file backend, CPU DDP."""
from .atomic_local_backend import (AtomicLocalBackend,
                                   register_atomic_local_backend)
from .autocast_optim_wrapper import AutocastOptimWrapper
from .cpu_distributed import prepare_cpu_distributed
from .hooks import (ActivationMemoryHook, CheckpointFitHook, CompressConvHook,
                    FiniteLossHook, MallocTrimHook)

register_atomic_local_backend()

__all__ = [
    'ActivationMemoryHook', 'AtomicLocalBackend', 'AutocastOptimWrapper',
    'CheckpointFitHook', 'CompressConvHook', 'FiniteLossHook',
    'MallocTrimHook', 'prepare_cpu_distributed',
    'register_atomic_local_backend'
]
