"""Compressed convolutions registered in mmseg's MODELS, and model surgery."""
from .compressed_conv import (CompressedConv2d, Conv2dGradFilter, Conv2dHOSVD,
                              Conv2dSVD)

__all__ = ['CompressedConv2d', 'Conv2dGradFilter', 'Conv2dHOSVD', 'Conv2dSVD']
