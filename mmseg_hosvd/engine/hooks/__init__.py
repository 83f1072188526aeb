"""MMEngine hooks registered in mmseg's HOOKS."""
from .activation_checkpoint_hook import ActivationCheckpointHook
from .activation_memory_hook import ActivationMemoryHook
from .autocast_error_hook import AutocastErrorHook
from .checkpoint_fit_hook import CheckpointFitHook, check_checkpoint_fits
from .chunked_loss_hook import ChunkedLossHook
from .compress_conv_hook import CompressConvHook
from .concat_in_place_hook import ConcatInPlaceHook
from .data_check_hook import DataCheckHook
from .data_checks import DataCheckError
from .explicit_attention_hook import ExplicitAttentionHook
from .finite_loss_hook import FiniteLossHook
from .frozen_prefix_hook import FrozenPrefixHook
from .malloc_trim_hook import MallocTrimHook
from .probe_record_hook import PROBE_RECORD_FILE, ProbeRecordHook
from .safe_checkpoint_hook import (
                                   CheckpointWriteError,
                                   SafeCheckpointHook,
                                   use_safe_checkpoint_hook,
)
from .start_checkpoint_hook import StartCheckpointHook
from .step_peak_memory_hook import StepPeakMemoryHook
from .weight_change_hook import WeightChangeHook

__all__ = [
    'ActivationCheckpointHook', 'ActivationMemoryHook', 'AutocastErrorHook',
    'CheckpointFitHook', 'CheckpointWriteError', 'ChunkedLossHook',
    'CompressConvHook', 'ConcatInPlaceHook', 'DataCheckError', 'DataCheckHook',
    'ExplicitAttentionHook', 'FiniteLossHook', 'FrozenPrefixHook',
    'MallocTrimHook', 'PROBE_RECORD_FILE', 'ProbeRecordHook',
    'SafeCheckpointHook', 'StartCheckpointHook',
    'StepPeakMemoryHook', 'WeightChangeHook', 'check_checkpoint_fits',
    'use_safe_checkpoint_hook'
]
