"""Iteration-based training whose resume is exact, augmentation included."""
import copy
import warnings

from mmengine.runner import IterBasedTrainLoop
from mmseg.registry import LOOPS

from ..utils.seeded_rngs import ITERATIONS, seed_global_rngs


@LOOPS.register_module()
class SeededIterBasedTrainLoop(IterBasedTrainLoop):
    """MMEngine's ``IterBasedTrainLoop`` with every random draw keyed.

    MMEngine resumes by restoring the iteration and replaying the data
    loader through the batches already trained. That re-makes their random
    crops and flips only where every draw happens again, in the same order,
    from the same generator state, and MMEngine saves no generator state:

    * the model's draws in the main process (dropout) continue from where
      model building left the generators, not from where the run was;
    * with ``num_workers=0`` the pipeline draws from the same global
      generators as the model, so any draw of the model shifts the
      augmentation of every later sample;
    * workers seed their generators from (seed, rank, worker id), so a run
      resumed with another ``num_workers`` (another machine) gets other
      crops.

    Saving the generators' states with the checkpoint cannot mend this:
    workers have generators of their own and have prefetched batches beyond
    the checkpoint, and the main process's state when the checkpoint is
    saved is not the one the next iteration starts from (hooks and
    validation draw in between).

    So nothing is saved; every draw is a function of the seed and of its
    place in the run, and a resumed run derives the same seeds again:

    * each training sample's pipeline runs with ``random``,
      ``numpy.random`` and torch's CPU generator seeded from (seed, rank,
      draw number): :class:`~mmseg_hosvd.datasets.DrawSampler` numbers the
      sampled indices in the main process and
      :class:`~mmseg_hosvd.datasets.SeededDrawDataset` seeds around the
      pipeline, wherever and however early the sample is loaded, and gives
      the caller its generators' states back;
    * each iteration starts by seeding the main process's generators
      (torch's CUDA ones too) from (seed, rank, iteration), before the
      ``before_train_iter`` hooks.

    MMEngine's replay of the trained batches still runs: it is what
    advances the sampler. The loop, not a hook, does this because the loop
    builds the data loader and starts its workers (each with a copy of the
    dataset, prefetching at once) before any hook is called.

    Exact resume needs a fixed ``randomness.seed``: a resumed run whose seed
    is not the checkpoint's is warned about. Use it as
    ``train_cfg = dict(type='SeededIterBasedTrainLoop', max_iters=...)``.

    Args:
        runner: The runner.
        dataloader: Config of the train data loader; its ``dataset`` and
            ``sampler`` are wrapped as above.
        *args: ``IterBasedTrainLoop``'s other arguments (``max_iters``...).
        **kwargs: Its keyword arguments.

    Raises:
        TypeError: When ``dataloader`` is an already built loader.
        ValueError: When it sets a ``batch_sampler`` (which would be handed
            numbered draws instead of indices).
    """

    def __init__(self, runner, dataloader, *args, **kwargs) -> None:
        if not isinstance(dataloader, dict):
            raise TypeError(
                'SeededIterBasedTrainLoop keys the samples of a train '
                'dataloader it builds from a config dict, got a built '
                f'{type(dataloader).__name__}')
        if dataloader.get('batch_sampler') is not None:
            raise ValueError(
                'SeededIterBasedTrainLoop does not take a batch_sampler, got '
                f'batch_sampler={dataloader["batch_sampler"]!r}; use '
                'IterBasedTrainLoop for it')
        self.seed = runner.seed
        keyed = copy.deepcopy(dataloader)
        keyed['dataset'] = dict(
            type='SeededDrawDataset', dataset=keyed['dataset'], seed=self.seed)
        keyed['sampler'] = dict(type='DrawSampler', sampler=keyed['sampler'])
        super().__init__(runner, keyed, *args, **kwargs)

    def run(self):
        """Trains, warning first when a resume cannot be exact.

        Returns:
            The model.
        """
        if self._iter > 0 and self.runner.seed != self.seed:
            warnings.warn(
                f'resumed from a checkpoint of seed {self.runner.seed}, but '
                f'the training samples are keyed by seed {self.seed}: the '
                'resumed run does not continue the checkpoint\'s random '
                f'stream; set randomness.seed={self.runner.seed} to resume '
                'exactly')
        return super().run()

    def run_iter(self, data_batch) -> None:
        """Seeds the generators from the iteration, then runs it.

        Args:
            data_batch: The batch.
        """
        seed_global_rngs(self.seed, ITERATIONS, self.runner.rank, self._iter)
        super().run_iter(data_batch)
