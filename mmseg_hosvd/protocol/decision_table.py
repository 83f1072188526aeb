"""Which set-up to use for a memory budget, read off a comparison's rows.

For each model and layer count, and each budget given as a fraction of
its reference vanilla's whole-step peak (:func:`reference_vanillas`: the
vanilla row of that model and layer count, in the same comparison, with
the largest peak), the choice is the row whose whole-step peak fits (at
most the fraction of the reference's) with the highest mean mIoU
difference to vanilla, paired by seed (vanilla's own is 0), a difference
whose interval holds 0 counting as 0: the seeds do not tell it from
vanilla. Each row's difference is to the vanilla row that runs its exact
reductions (:func:`~.seed_statistics.baseline_of`); the fraction is of
one peak per model and layer count, so that rows compared with different
vanilla rows (one with the in-place concatenation, one without) are
placed on one scale. On a tie an exact row (vanilla's gradients:
accumulation, checkpointing) comes first, then the faster. The cell says
what it costs: that difference with its 95% interval (``~``: it holds 0)
and the whole-step peak and step time against the reference's (the step
time against another vanilla baseline's where the reference has none,
:func:`timing_references`). A row without a
difference (no seed shared with vanilla) or without a whole-step peak is
never chosen.
"""
from typing import Dict, List, Optional, Sequence, Tuple

from ..reductions.describe import baseline_tag
from .comparison_table import against, difference_cell
from .seed_statistics import baseline_of, vanilla_baselines

#: The exact reductions every protocol row runs, left out of set-up names.
PROTOCOL_REDUCTIONS = ('prefix', 'chunkloss')
#: The budgets of the README's table, as fractions of vanilla's peak.
BUDGETS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)


def setup_name(row: dict) -> str:
    """A row's set-up: method and setting, and the reductions beyond the
    frozen prefix and chunked loss that every protocol row runs (e.g.
    'vanilla +mb1', 'hosvd lean eps=0.8', 'quantized bits=2 +concat')."""
    tag = row.get('reductions') or ''
    common = {part for part in baseline_tag(tag).split('-')
              if part.startswith(PROTOCOL_REDUCTIONS)}
    extra = '-'.join(p for p in tag.split('-') if p and p not in common)
    return ' '.join(filter(None, [row['method'], row['setting'],
                                  extra and f'+{extra}']))


def is_exact(row: dict) -> bool:
    """Whether a row trains with vanilla's gradients: vanilla with any
    reduction but autocast."""
    return row['method'] == 'vanilla' and 'amp' not in (
        row.get('reductions') or '').split('-')


def reference_vanillas(rows: Sequence[dict]) -> Dict[Tuple[str, int], dict]:
    """The vanilla row each model and layer count's budgets are fractions
    of: of its vanilla baselines (:func:`~.seed_statistics.
    vanilla_baselines`, one per set of exact reductions) with a whole-step
    peak, the one with the largest."""
    references: Dict[Tuple[str, int], dict] = {}
    for row in vanilla_baselines(list(rows)).values():
        key = (row['model'], row['layers'])
        peak = row.get('step_peak_mb')
        if peak is not None and (key not in references or
                                 peak > references[key]['step_peak_mb']):
            references[key] = row
    return references


def timing_references(rows: Sequence[dict]
                      ) -> Dict[Tuple[str, int], dict]:
    """The vanilla row each model and layer count's step times are
    fractions of: its :func:`reference_vanillas` row where that has a step
    time, else, of its vanilla baselines with a step time, the one with
    the largest whole-step peak (a record can hold a peak without a step
    time: a run stopped before its second timed step)."""
    references = reference_vanillas(rows)
    timed: Dict[Tuple[str, int], dict] = {}
    ranks: Dict[Tuple[str, int], tuple] = {}
    for row in vanilla_baselines(list(rows)).values():
        key = (row['model'], row['layers'])
        rank = (references.get(key) is row, row.get('step_peak_mb') or 0.0)
        if row.get('step_time_s') is not None and (key not in ranks
                                                   or rank > ranks[key]):
            timed[key], ranks[key] = row, rank
    return timed


def _score(row: dict, vanilla: Dict[tuple, dict]) -> Optional[float]:
    """The difference to vanilla that the choice ranks by: 0 for vanilla
    and where the interval holds 0; None without a difference."""
    diff = row.get('mIoU_diff')
    if diff is None:
        return 0.0 if baseline_of(row, vanilla) is row else None
    return 0.0 if diff['contains_zero'] else diff['mean']


def choose(rows: Sequence[dict], model: str, layers: int,
           fraction: float) -> Optional[dict]:
    """The row of ``model`` at ``layers`` layers to use within ``fraction``
    of its reference vanilla's whole-step peak
    (:func:`reference_vanillas`), or None when none fits or there is no
    reference.

    Args:
        rows: Rows of :func:`~mmseg_hosvd.protocol.comparison.collect`.
        model: The model's name.
        layers: The layer count.
        fraction: The budget, a fraction of the reference's whole-step
            peak.
    """
    reference = reference_vanillas(rows).get((model, layers))
    if reference is None:
        return None
    timing = timing_references(rows).get((model, layers), reference)
    vanilla = vanilla_baselines(list(rows))
    fitting = []
    for row in rows:
        ratio = against(row, reference, 'step_peak_mb')
        score = _score(row, vanilla)
        if (row['model'], row['layers']) != (model, layers) or (
                ratio is None or score is None or ratio > fraction):
            continue
        fitting.append((-score, not is_exact(row),
                        against(row, timing, 'step_time_s') or 1.0,
                        ratio, len(fitting), row))
    return min(fitting)[-1] if fitting else None


def decision_cell(row: Optional[dict], reference: dict,
                  timing: Optional[dict] = None) -> str:
    """A chosen row as '`set-up`: difference [interval], peak and time
    against vanilla's'; '-' for none.

    Args:
        row: The chosen row, or None.
        reference: The vanilla row of the peak ratio
            (:func:`reference_vanillas`).
        timing: The vanilla row of the time ratio
            (:func:`timing_references`); None for ``reference``.
    """
    if row is None:
        return '-'
    cost = difference_cell(row.get('mIoU_diff'))
    if row.get('mIoU_diff') is None:
        cost = 'vanilla'
    time = against(row, timing or reference, 'step_time_s')
    return (f"`{setup_name(row)}`: {cost}, peak "
            f"{against(row, reference, 'step_peak_mb'):.2f}x" +
            (f', time {time:.2f}x' if time is not None else ''))


def check_budgets(budgets: Sequence[float]) -> None:
    """Raises ValueError naming a budget that is not a number in (0, 1]."""
    for budget in budgets:
        if isinstance(budget, bool) or not isinstance(
                budget, (int, float)) or not 0 < budget <= 1:
            raise ValueError("a budget is a fraction of vanilla's whole-"
                             f'step peak in (0, 1], got {budget!r}')


def by_model_and_layers(key: Tuple[str, Optional[int]]) -> tuple:
    """Sort key of a (model, layers) pair whose layer count may be
    unknown (None, sorted first)."""
    return key[0], key[1] or 0


def unplaced(rows: Sequence[dict]) -> List[Tuple[str, Optional[int]]]:
    """The (model, layers) of ``rows`` that have no reference vanilla
    (:func:`reference_vanillas`: no vanilla baseline with a whole-step
    peak), whose rows no budget can place, sorted."""
    references = reference_vanillas(rows)
    return sorted({(r['model'], r['layers']) for r in rows} - set(references),
                  key=by_model_and_layers)


def layers_phrase(layers: Optional[int]) -> str:
    """'at 5 layers', or 'at an unknown layer count' for None."""
    return ('at an unknown layer count' if layers is None else
            f'at {layers} layers')


def decision_table(rows: Sequence[dict],
                   budgets: Sequence[float] = BUDGETS) -> str:
    """The choice for every model and layer count with a reference vanilla
    row (:func:`reference_vanillas`) and every budget, as a Markdown table,
    followed by a line naming the model and layer counts without one
    (:func:`unplaced`), where there are any.

    Raises:
        ValueError: For a budget that is not a number in (0, 1].
    """
    check_budgets(budgets)
    references = reference_vanillas(rows)
    timings = timing_references(rows)
    keys = sorted(references, key=by_model_and_layers)
    header = ['model', 'layers'] + [f'within {b:.2f}x' for b in budgets]
    lines = ['| ' + ' | '.join(header) + ' |', '|---' * len(header) + '|']
    for model, layers in keys:
        cells = [decision_cell(choose(rows, model, layers, b),
                               references[model, layers],
                               timings.get((model, layers)))
                 for b in budgets]
        lines.append('| ' + ' | '.join([model, str(layers)] + cells) + ' |')
    missing = unplaced(rows)
    if missing:
        lines.append('\nNot placed, no vanilla row with a whole-step peak: ' +
                     ', '.join(f'{m} {layers_phrase(n)}'
                               for m, n in missing) +
                     '.')
    return '\n'.join(lines)
