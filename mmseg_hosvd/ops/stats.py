"""What a compressed convolution stored for backward in one forward."""
from typing import NamedTuple, Optional, Tuple

#: Bytes per stored element in the analytical (paper) memory count.
ANALYTICAL_BYTES_PER_ELEMENT = 4


class StoredActivation(NamedTuple):
    """Size of the compressed form of one convolution input.

    Attributes:
        numel: Number of stored elements (core and factors, SVD factors, or
            Gradient Filter patch sums).
        ranks: Ranks per mode (HOSVD), the single SVD rank, or None.
        input_numel: Number of elements of the uncompressed input.
        shared: True when another convolution already stored this input's
            decomposition in the same forward (``numel`` is then 0).
    """
    numel: int
    ranks: Optional[Tuple[int, ...]]
    input_numel: int
    shared: bool = False

    @property
    def bytes(self) -> int:
        """Analytical memory: stored elements times 4 bytes."""
        return self.numel * ANALYTICAL_BYTES_PER_ELEMENT

    @property
    def ratio(self) -> float:
        """Stored elements over input elements."""
        return self.numel / max(self.input_numel, 1)
