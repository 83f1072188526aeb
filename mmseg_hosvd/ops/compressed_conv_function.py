"""The convolution names of the compressed-layer skeleton.

:func:`compressed_conv2d` and :func:`decomposed_conv2d` are
:func:`~.compressed_function.compressed_layer` and
:func:`~.compressed_function.decomposed_layer` given a
:class:`~.conv_geometry.ConvGeometry`.
"""
from .compressed_function import (
                                  BackwardRule,
                                  CompressedConv2dFunction,
                                  compressed_layer,
                                  decomposed_layer,
)

compressed_conv2d = compressed_layer
decomposed_conv2d = decomposed_layer

__all__ = [
    'BackwardRule', 'CompressedConv2dFunction', 'compressed_conv2d',
    'decomposed_conv2d'
]
