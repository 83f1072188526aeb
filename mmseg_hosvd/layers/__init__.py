"""Compressed Conv2d and Linear layers (registered in mmseg's MODELS), their
subspace-tracking and warm-started forms, and explicit attention.

The public names are re-exported by :mod:`mmseg_hosvd.models`.
"""
