"""Which layers are fine-tuned: the model trace, the reference presets,
freezing and swapping layers (surgery), the fine-tuning plan, rank
calibration and the swap to explicit attention.

The public names are re-exported by :mod:`mmseg_hosvd.models`.
"""
