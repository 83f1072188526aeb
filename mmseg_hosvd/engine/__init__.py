"""Engine components: hooks, train loop, optimizer wrapper, file backend, CPU
DDP."""
from .atomic_local_backend import (
                                   AtomicLocalBackend,
                                   register_atomic_local_backend,
)
from .autocast_optim_wrapper import AutocastOptimWrapper
from .cpu_distributed import prepare_cpu_distributed
from .hooks import (
                                   ActivationCheckpointHook,
                                   ActivationMemoryHook,
                                   CheckpointFitHook,
                                   ChunkedLossHook,
                                   CompressConvHook,
                                   ConcatInPlaceHook,
                                   DataCheckError,
                                   DataCheckHook,
                                   ExplicitAttentionHook,
                                   FiniteLossHook,
                                   FrozenPrefixHook,
                                   MallocTrimHook,
                                   SafeCheckpointHook,
                                   StartCheckpointHook,
                                   StepPeakMemoryHook,
)
from .seeded_train_loop import SeededIterBasedTrainLoop

register_atomic_local_backend()

__all__ = [
    'ActivationCheckpointHook', 'ActivationMemoryHook', 'AtomicLocalBackend',
    'AutocastOptimWrapper', 'CheckpointFitHook', 'ChunkedLossHook',
    'CompressConvHook', 'ConcatInPlaceHook', 'DataCheckError',
    'DataCheckHook',
    'ExplicitAttentionHook',
    'FiniteLossHook', 'FrozenPrefixHook', 'MallocTrimHook',
    'SafeCheckpointHook', 'StartCheckpointHook',
    'SeededIterBasedTrainLoop', 'StepPeakMemoryHook',
    'prepare_cpu_distributed',
    'register_atomic_local_backend'
]
