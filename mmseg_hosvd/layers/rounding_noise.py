"""The private random generator of the quantized modules' rounding noise."""
import torch


class SeededRoundingNoise:
    """Mixin: a generator seeded with ``self.seed``, one per device.

    The global random state is never touched; the generator is created (and
    seeded) on the first forward and again when the input moves to another
    device.
    """

    seed: int
    _generator = None

    def rounding_generator(self, device: torch.device) -> torch.Generator:
        """The generator of the rounding noise on ``device``."""
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(self.seed)
        return self._generator
