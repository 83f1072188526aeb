"""The global random generators, seeded from a key instead of their history.

mmseg's transforms draw from Python's ``random`` and NumPy's legacy global
generator, models (dropout) from torch's default generators. Seeding them
from ``(seed, domain, *key)`` makes what is drawn afterwards a function of
the key alone, whatever ran in the process before.
"""
import contextlib
import random
from typing import Iterator

import numpy as np
import torch

SAMPLES = 0  # domain of a training sample's augmentation
ITERATIONS = 1  # domain of a training iteration's model randomness


def check_seed(seed) -> int:
    """Validates a seed for :func:`seed_global_rngs`.

    Args:
        seed: The seed.

    Returns:
        The seed as a Python int.

    Raises:
        ValueError: When it is not a non-negative integer.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) \
            or seed < 0:
        raise ValueError(
            f'seed must be a non-negative integer, got {seed!r}')
    return int(seed)


def seed_global_rngs(seed: int,
                     domain: int,
                     *key: int,
                     cuda: bool = True) -> None:
    """Seeds ``random``, ``numpy.random`` and torch from a key.

    The three seeds are independent words of NumPy's ``SeedSequence`` of
    ``seed`` with spawn key ``(domain, *key)``, so different domains and keys
    give unrelated streams.

    Args:
        seed: The run's seed (non-negative).
        domain: :data:`SAMPLES` or :data:`ITERATIONS`.
        *key: Non-negative integers naming the draw within the domain.
        cuda: Whether torch's CUDA generators are seeded too (otherwise only
            its CPU generator).
    """
    words = np.random.SeedSequence(
        check_seed(seed), spawn_key=(domain, *key)).generate_state(4)
    random.seed(int.from_bytes(words[:2].tobytes(), 'little'))
    np.random.seed(words)
    torch_seed = int.from_bytes(words[2:].tobytes(), 'little')
    if cuda:
        torch.manual_seed(torch_seed)
    else:
        torch.default_generator.manual_seed(torch_seed)


@contextlib.contextmanager
def isolated_global_rngs() -> Iterator[None]:
    """Restores the CPU global generators' states on exit.

    What runs inside may seed or draw from ``random``, ``numpy.random`` and
    torch's CPU generator without changing what the caller draws next.
    """
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
