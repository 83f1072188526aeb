"""Training samples whose augmentation is seeded by their draw number.

:class:`DrawSampler` numbers the indices its inner sampler draws, and
:class:`SeededDrawDataset` runs the wrapped dataset's pipeline for draw ``n``
with the global generators seeded from ``(seed, rank, n)``. The random crop
or flip of a sample is then a function of the seed and its place in the
stream alone: not of which data loader worker made it, how many batches were
prefetched, or what the main process drew before. See
:class:`mmseg_hosvd.engine.SeededIterBasedTrainLoop`, which wraps a train
loader in both.
"""
import copy
from typing import NamedTuple, Union

from mmengine.dist import get_dist_info
from mmseg.registry import DATA_SAMPLERS, DATASETS
from torch.utils.data import Sampler

from ..utils.seeded_rngs import (
    SAMPLES,
    check_seed,
    isolated_global_rngs,
    seed_global_rngs,
)


class Draw(NamedTuple):
    """One sampled index and its place in the rank's stream of draws."""
    rank: int
    number: int
    index: int


@DATA_SAMPLERS.register_module()
class DrawSampler(Sampler):
    """Yields the inner sampler's indices as numbered :class:`Draw` tuples.

    The numbers count every index drawn since the sampler was built, across
    epochs; they run in the main process, so prefetching workers receive
    them with the index.

    Args:
        sampler: The inner sampler, or its config (built with ``dataset``
            and ``seed`` like MMEngine builds a sampler).
        dataset: The dataset sampled.
        seed: The inner sampler's seed.
    """

    def __init__(self, sampler: Union[dict, Sampler], dataset,
                 seed=None) -> None:
        if isinstance(sampler, dict):
            sampler = DATA_SAMPLERS.build(
                sampler, default_args=dict(dataset=dataset, seed=seed))
        self.sampler = sampler
        self.rank, _ = get_dist_info()
        self.drawn = 0

    def __iter__(self):
        for index in self.sampler:
            draw = Draw(self.rank, self.drawn, int(index))
            self.drawn += 1
            yield draw

    def __len__(self) -> int:
        return len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        """Passes the epoch on to the inner sampler, when it takes one.

        Args:
            epoch: The epoch.
        """
        if hasattr(self.sampler, 'set_epoch'):
            self.sampler.set_epoch(epoch)


@DATASETS.register_module()
class SeededDrawDataset:
    """Makes each :class:`Draw` of a dataset with freshly seeded generators.

    ``random``, ``numpy.random`` and torch's CPU generator are seeded from
    ``(seed, draw.rank, draw.number)`` for the sample's pipeline, and given
    back their previous states afterwards, so that loading in the main
    process (``num_workers=0``) leaves the model's random draws alone.

    Args:
        dataset: The dataset, or its config.
        seed: The run's seed (non-negative).
    """

    def __init__(self, dataset, seed: int) -> None:
        self.seed = check_seed(seed)
        self.dataset = (
            DATASETS.build(dataset) if isinstance(dataset, dict) else dataset)

    @property
    def metainfo(self) -> dict:
        """The wrapped dataset's meta information."""
        return copy.deepcopy(self.dataset.metainfo)

    def full_init(self) -> None:
        """Fully initializes the wrapped dataset."""
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()

    def get_data_info(self, index: int) -> dict:
        """The wrapped dataset's annotation of ``index``.

        Args:
            index: Index in the wrapped dataset.

        Returns:
            Its data information.
        """
        return self.dataset.get_data_info(index)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, draw: Draw):
        if not isinstance(draw, Draw):
            raise TypeError(
                'SeededDrawDataset takes the Draws of a DrawSampler, got '
                f'{draw!r}; sample it with DrawSampler')
        with isolated_global_rngs():
            seed_global_rngs(
                self.seed, SAMPLES, draw.rank, draw.number, cuda=False)
            return self.dataset[draw.index]
