"""What a training config does, besides its method, to lower memory.

Gradient accumulation, activation checkpointing, mixed precision, the frozen
prefix in micro-batches, the chunked loss and the in-place concatenation
change a run's whole-step peak
(and, for mixed precision, its accuracy), so a comparison must tell such runs
from the plain ones: their rows carry the tag of :func:`reductions_tag`.

The tag's names are the one vocabulary of reductions, spoken by the
protocol's config names (``vanilla-mb1``, ``vanilla-ckpt``...), its
comparisons and the benchmarks' ``--reductions`` alike (read back with
:func:`reduction_names` and :func:`parse_reductions_tag`):
:data:`REDUCTION_NAMES`.
"""
import re
from typing import List, Optional

from mmengine.config import Config, ConfigDict

#: Optimizer wrappers that run the forward in lower precision.
MIXED_PRECISION_WRAPPERS = ('AmpOptimWrapper', 'AutocastOptimWrapper')

#: The names of a reductions tag, in the tag's order; ``<n>`` is a count of
#: images: 'mb<n>' accumulation over micro-batches of n, 'ckpt' activation
#: checkpointing, 'amp' mixed precision, 'prefix<n>' the frozen prefix in
#: micro-batches of n, 'chunkloss<n>' the loss in chunks of n, 'concat' the
#: heads' branches written into their concatenation.
REDUCTION_NAMES = ('mb<n>', 'ckpt', 'amp', 'prefix<n>', 'chunkloss<n>',
                   'concat')
_PATTERNS = tuple(
    re.compile(name.replace('<n>', r'([1-9][0-9]*)') + '$')
    for name in REDUCTION_NAMES)


def _hooks(cfg: Config) -> dict:
    return {
        hook.get('type'): hook
        for hook in cfg.get('custom_hooks', None) or []
        if isinstance(hook, (dict, ConfigDict))
    }


def _amp_dtype(optim_wrapper: dict) -> Optional[str]:
    kind = optim_wrapper.get('type', 'OptimWrapper')
    if kind not in MIXED_PRECISION_WRAPPERS:
        return None
    default = 'bfloat16' if kind == 'AutocastOptimWrapper' else 'float16'
    return str(optim_wrapper.get('dtype', None) or default)


def reductions_of(cfg: Config) -> dict:
    """The memory reductions a training config turns on.

    Args:
        cfg: The training config, as run (with ``--amp`` applied: the one a
            checkpoint's ``meta['cfg']`` holds).

    Returns:
        ``dict(accumulate, micro_batch, amp, checkpoint, frozen_prefix,
        chunked_loss, concat)``: the accumulation count and the data
        loader's batch size, the autocast dtype (None without), whether
        ``ActivationCheckpointHook`` runs, the frozen prefix's micro-batch
        and the loss chunk (None without), and whether
        ``ConcatInPlaceHook`` runs.
    """
    optim_wrapper = cfg.get('optim_wrapper', None) or {}
    hooks = _hooks(cfg)
    prefix = hooks.get('FrozenPrefixHook')
    loss = hooks.get('ChunkedLossHook')
    return dict(
        accumulate=int(optim_wrapper.get('accumulative_counts', 1)),
        micro_batch=cfg.get('train_dataloader', {}).get('batch_size'),
        amp=_amp_dtype(optim_wrapper),
        checkpoint='ActivationCheckpointHook' in hooks,
        frozen_prefix=None if prefix is None else prefix.get('micro_batch', 1),
        chunked_loss=None if loss is None else loss.get('chunk', 1),
        concat='ConcatInPlaceHook' in hooks)


def reductions_tag(reductions: Optional[dict]) -> str:
    """The short tag of a run's reductions, '' for none.

    In the order of the protocol's config names: 'mb1' (accumulation down
    to micro-batches of 1), 'ckpt', 'amp', 'prefix1' (frozen prefix in
    micro-batches of 1), 'chunkloss1', 'concat'; joined by '-'.
    """
    if not reductions:
        return ''
    parts = []
    if reductions.get('accumulate', 1) > 1:
        parts.append(f"mb{reductions['micro_batch']}")
    if reductions.get('checkpoint'):
        parts.append('ckpt')
    if reductions.get('amp'):
        parts.append('amp')
    if reductions.get('frozen_prefix') is not None:
        parts.append(f"prefix{reductions['frozen_prefix']}")
    if reductions.get('chunked_loss') is not None:
        parts.append(f"chunkloss{reductions['chunked_loss']}")
    if reductions.get('concat'):
        parts.append('concat')
    return '-'.join(parts)


#: The exact reductions that leave the step's arithmetic as it is (frozen
#: prefix, chunked loss, in-place concatenation; the protocol's every
#: fine-tuning row runs the first two): a row is compared with vanilla
#: running the same ones.
BASELINE_REDUCTIONS = ('prefix', 'chunkloss', 'concat')


def baseline_tag(tag: Optional[str]) -> str:
    """The reductions of the vanilla row a run is compared with.

    Args:
        tag: A run's reductions tag (:func:`reductions_tag`), '' or None
            for none.

    Returns:
        The tag's frozen-prefix, chunked-loss and in-place concatenation
        parts (:data:`BASELINE_REDUCTIONS`), without accumulation,
        checkpointing and autocast (what a peer row is compared on): e.g.
        'prefix1-chunkloss1' for 'mb1-prefix1-chunkloss1', '' for 'amp'.
    """
    return '-'.join(part for part in (tag or '').split('-')
                    if part.startswith(BASELINE_REDUCTIONS))


def describe_reductions(reductions: Optional[dict]) -> str:
    """The reductions in words, '' for none."""
    if not reductions:
        return ''
    words = []
    if reductions.get('accumulate', 1) > 1:
        words.append(f"accumulation of {reductions['accumulate']} "
                     f"micro-batches of {reductions['micro_batch']}")
    if reductions.get('checkpoint'):
        words.append('activation checkpointing')
    if reductions.get('amp'):
        words.append(f"{reductions['amp']} autocast")
    if reductions.get('frozen_prefix') is not None:
        words.append('frozen prefix in micro-batches of '
                     f"{reductions['frozen_prefix']}")
    if reductions.get('chunked_loss') is not None:
        words.append(f"loss in chunks of {reductions['chunked_loss']}")
    if reductions.get('concat'):
        words.append('branches written into the concatenation')
    return ', '.join(words)


def reduction_names(tag: str) -> List[str]:
    """The names of a reductions tag, checked, in :func:`reductions_tag`'s
    order.

    Args:
        tag: Names of :data:`REDUCTION_NAMES` joined by '-' (as
            :func:`reductions_tag` writes them) or '+', in any order, each
            kind at most once; '' or 'none' for none.

    Raises:
        ValueError: For an unknown name, or a kind named twice.
    """
    if tag in ('', 'none'):
        return []
    found = {}
    for name in re.split('[-+]', tag):
        kind = next((i for i, pattern in enumerate(_PATTERNS)
                     if pattern.match(name)), None)
        if kind is None:
            raise ValueError(
                f'unknown reduction {name!r} in {tag!r}; use '
                f"{list(REDUCTION_NAMES)} (n >= 1) joined by '-' or '+', "
                "or 'none'")
        if kind in found:
            raise ValueError(f'{tag!r} names {found[kind]!r} and {name!r}; '
                             'give each reduction once')
        found[kind] = name
    return [found[kind] for kind in sorted(found)]


def parse_reductions_tag(tag: str) -> dict:
    """What a reductions tag asks for (see :func:`reduction_names`).

    Returns:
        ``dict(micro_batch, checkpoint, amp, frozen_prefix,
        chunked_loss, concat)``: the micro-batch of accumulation ('mb<n>'),
        the frozen prefix's micro-batch and the loss chunk (None when not
        named), and whether 'ckpt', 'amp' and 'concat' are named.
    """
    counts = {}
    for name in reduction_names(tag):
        match = re.match(r'([a-z]+)([0-9]*)$', name)
        counts[match.group(1)] = int(match.group(2) or 0)
    return dict(micro_batch=counts.get('mb'),
                checkpoint='ckpt' in counts,
                amp='amp' in counts,
                frozen_prefix=counts.get('prefix'),
                chunked_loss=counts.get('chunkloss'),
                concat='concat' in counts)
