"""Iteration-based training whose resume is exact, augmentation included."""
import copy
import warnings
from typing import Dict, List

import torch
from mmengine.optim import OptimWrapperDict
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

    With ``whole_steps=True`` one iteration is one whole optimizer step: it
    runs the optimizer wrapper's ``accumulative_counts`` micro-batches, each
    forward and backward on its own, then the update. ``max_iters``, the
    learning-rate schedule, the validation and checkpoint intervals and the
    hooks then count optimizer steps, as without accumulation, so a config
    that splits its batch of B into k micro-batches of B / k (the data
    loader's ``batch_size``) and sets ``accumulative_counts=k`` trains on the
    same samples, with the same augmentation draws and the same learning
    rate at every update as the config it came from. (MMEngine's own loop
    counts micro-batches: its schedules, stretched k times, would move the
    learning rate between the micro-batches of one update.) Hooks see the
    step's first micro-batch as ``data_batch`` and, as ``outputs``, each
    logged value averaged over the micro-batches.

    Args:
        runner: The runner.
        dataloader: Config of the train data loader; its ``dataset`` and
            ``sampler`` are wrapped as above.
        *args: ``IterBasedTrainLoop``'s other arguments (``max_iters``...).
        whole_steps: Whether an iteration is a whole optimizer step of
            ``accumulative_counts`` micro-batches (False: one micro-batch,
            as in MMEngine).
        **kwargs: Its keyword arguments.

    Raises:
        TypeError: When ``dataloader`` is an already built loader.
        ValueError: When it sets a ``batch_sampler`` (which would be handed
            numbered draws instead of indices).
    """

    def __init__(self,
                 runner,
                 dataloader,
                 *args,
                 whole_steps: bool = False,
                 **kwargs) -> None:
        if not isinstance(whole_steps, bool):
            raise TypeError(f'whole_steps must be True or False, got '
                            f'{whole_steps!r}')
        self.whole_steps = whole_steps
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
                'exactly', stacklevel=2)
        if self.whole_steps:
            self._count_micro_batches()
        return super().run()

    def micro_batches(self) -> int:
        """Micro-batches per iteration: the accumulation count, if whole
        steps.

        Raises:
            ValueError: When the optimizer wrappers of an
                ``OptimWrapperDict`` accumulate over different counts.
        """
        if not self.whole_steps:
            return 1
        wrapper = self.runner.optim_wrapper
        wrappers = (list(wrapper.values())
                    if isinstance(wrapper, OptimWrapperDict) else [wrapper])
        counts = {w._accumulative_counts for w in wrappers}
        if len(counts) != 1:
            raise ValueError('whole_steps needs one accumulative_counts for '
                             f'every optimizer wrapper, got {sorted(counts)}')
        return counts.pop()

    def _count_micro_batches(self) -> None:
        """Counts the wrapper's updates and replays the data in micro-batches.

        The runner initialised the wrapper's count in iterations; MMEngine's
        replay of a resumed run advances the loader by one batch per
        iteration, so the rest of each step's micro-batches are skipped
        here.
        """
        micro = self.micro_batches()
        self.runner.optim_wrapper.initialize_count_status(
            self.runner.model, self._iter * micro, self._max_iters * micro)
        for _ in range(self._iter * (micro - 1)):
            next(self.dataloader_iterator)

    def run_iter(self, data_batch) -> None:
        """Seeds the generators from the iteration, then runs it.

        With whole steps, the iteration's other micro-batches come from the
        loader here, each through ``train_step`` (the wrapper updates after
        the last).

        Args:
            data_batch: The batch (the first micro-batch).
        """
        seed_global_rngs(self.seed, ITERATIONS, self.runner.rank, self._iter)
        micro = self.micro_batches()
        if micro == 1:
            super().run_iter(data_batch)
            return
        self.runner.call_hook(
            'before_train_iter', batch_idx=self._iter, data_batch=data_batch)
        outputs = []
        for index in range(micro):
            batch = data_batch if index == 0 else next(
                self.dataloader_iterator)
            outputs.append(self.runner.model.train_step(
                batch, optim_wrapper=self.runner.optim_wrapper))
        self.runner.call_hook(
            'after_train_iter',
            batch_idx=self._iter,
            data_batch=data_batch,
            outputs=average_outputs(outputs))
        self._iter += 1


def average_outputs(outputs: List[Dict[str, torch.Tensor]]
                    ) -> Dict[str, torch.Tensor]:
    """Each logged value of a step's micro-batches, averaged."""
    return {
        key: sum(output[key] for output in outputs) / len(outputs)
        for key in outputs[0]
    }
