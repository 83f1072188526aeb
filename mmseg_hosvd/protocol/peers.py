"""The embedded protocol's rows for the peers: the tools users reach for
instead of compression (see docs/design.md), alone and combined with HOSVD.

Each row is a fine-tuning config of the protocol (every model, 5 and 10
layers) named ``<method tag>-<reduction>``, built on the method's own config:

* ``mb1``, ``mb2``, ``mb4``: gradient accumulation, the batch of 8 in
  micro-batches of 1, 2 or 4, one optimizer step per iteration
  (``SeededIterBasedTrainLoop(whole_steps=True)``), so that the run sees the
  same samples and learning rates as the batch;
* ``ckpt``: activation checkpointing of the fine-tuned blocks
  (``ActivationCheckpointHook``);
* ``amp``: bfloat16 autocast (``AutocastOptimWrapper``; on CUDA too).

Quantized activations are a method of their own (``qact8``, ``qact2``).
"""
from typing import Tuple

#: Micro-batch size of each accumulation row (the protocol's batch is 8).
ACCUMULATION_MICRO_BATCHES = (1, 2, 4)

#: (method tag, reduction) of every peer row, in table order.
PEER_ROWS: Tuple[Tuple[str, str], ...] = tuple(
    [(tag, f'mb{micro}') for tag in ('vanilla', 'hosvd-eps0.8-lean')
     for micro in ACCUMULATION_MICRO_BATCHES] +
    [('vanilla', 'ckpt'), ('hosvd-eps0.8-lean', 'ckpt'), ('vanilla', 'amp'),
     ('hosvd-eps0.8', 'amp'), ('hosvd-eps0.8-lean', 'amp')])


def peer_tags() -> Tuple[str, ...]:
    """Config-name tags of the peer rows (e.g. 'vanilla-mb1')."""
    return tuple(f'{tag}-{reduction}' for tag, reduction in PEER_ROWS)
