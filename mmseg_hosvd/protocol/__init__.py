"""The embedded protocol: its matrix of configs and work dirs
(:mod:`.matrix`), the tables and writers of its configs and of the
real-dataset ones (:mod:`.config_table`, :mod:`.config_writer`,
:mod:`.real_dataset_table`, :mod:`.real_dataset_configs`,
:mod:`.config_files`), its runs (:mod:`.runs`), the peers' rows
(:mod:`.peers`), the comparison of its results over seeds
(:mod:`.comparison`, :mod:`.comparison_table`, :mod:`.seed_statistics`,
:mod:`.pareto_front`, :mod:`.reporting`, :mod:`.pareto_plot`), the time
left (:mod:`.time_left`) and config drift (:mod:`.config_drift`).

The names of :mod:`.matrix` are re-exported here
(``from mmseg_hosvd.protocol import config_path``).
"""
from .matrix import (
                     DATA_ROOT,
                     MODEL_CONFIGS,
                     PAPER_MODELS,
                     SOURCE_SUFFIX,
                     TARGET_SUFFIX,
                     config_path,
                     dataset_ready,
                     ensure_dataset,
                     final_checkpoint,
                     stale_reason,
                     work_dir,
)

__all__ = [
    'DATA_ROOT', 'MODEL_CONFIGS', 'PAPER_MODELS', 'SOURCE_SUFFIX',
    'TARGET_SUFFIX', 'config_path', 'dataset_ready', 'ensure_dataset',
    'final_checkpoint', 'stale_reason', 'work_dir'
]
