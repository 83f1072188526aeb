"""Which set-up to use for a memory budget, read off a comparison's rows.

For each model and layer count, and each budget given as a fraction of
vanilla's whole-step peak (the same model and layers with the same frozen
prefix and chunked loss, in the same comparison), the choice is the row
whose whole-step peak fits (``step_peak_ratio`` at most the fraction) with
the highest mean mIoU difference to vanilla, paired by seed (vanilla's own
is 0), a difference whose interval holds 0 counting as 0: the seeds do not
tell it from vanilla. On a tie an exact row (vanilla's gradients:
accumulation, checkpointing) comes first, then the faster. The cell says
what it costs: that difference with its 95% interval (``~``: it holds 0)
and the whole-step peak and step time against vanilla's. A row without a
difference (no seed shared with vanilla) or without a whole-step peak is
never chosen.
"""
from typing import Dict, List, Optional, Sequence, Tuple

from ..reductions.describe import baseline_tag
from .comparison_table import difference_cell
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
    of vanilla's whole-step peak, or None when none fits.

    Args:
        rows: Rows of :func:`~mmseg_hosvd.protocol.comparison.collect`.
        model: The model's name.
        layers: The layer count.
        fraction: The budget, a fraction of vanilla's whole-step peak.
    """
    vanilla = vanilla_baselines(list(rows))
    fitting = []
    for row in rows:
        ratio = row.get('step_peak_ratio')
        score = _score(row, vanilla)
        if (row['model'], row['layers']) != (model, layers) or (
                ratio is None or score is None or ratio > fraction):
            continue
        fitting.append((-score, not is_exact(row), row.get('time_ratio')
                        or 1.0, ratio, len(fitting), row))
    return min(fitting)[-1] if fitting else None


def decision_cell(row: Optional[dict]) -> str:
    """A chosen row as '`set-up`: difference [interval], peak and time
    against vanilla's'; '-' for none."""
    if row is None:
        return '-'
    cost = difference_cell(row.get('mIoU_diff'))
    if row.get('mIoU_diff') is None:
        cost = 'vanilla'
    time = row.get('time_ratio')
    return (f"`{setup_name(row)}`: {cost}, peak "
            f"{row['step_peak_ratio']:.2f}x" +
            (f', time {time:.2f}x' if time is not None else ''))


def check_budgets(budgets: Sequence[float]) -> None:
    """Raises ValueError naming a budget that is not a number in (0, 1]."""
    for budget in budgets:
        if isinstance(budget, bool) or not isinstance(
                budget, (int, float)) or not 0 < budget <= 1:
            raise ValueError("a budget is a fraction of vanilla's whole-"
                             f'step peak in (0, 1], got {budget!r}')


def decision_table(rows: Sequence[dict],
                   budgets: Sequence[float] = BUDGETS) -> str:
    """The choice for every model and layer count with a vanilla baseline
    and every budget, as a Markdown table.

    Raises:
        ValueError: For a budget that is not a number in (0, 1].
    """
    check_budgets(budgets)
    keys: List[Tuple[str, int]] = sorted(
        {(r['model'], r['layers']) for r in vanilla_baselines(list(rows))
         .values()})
    header = ['model', 'layers'] + [f'within {b:.2f}x' for b in budgets]
    lines = ['| ' + ' | '.join(header) + ' |', '|---' * len(header) + '|']
    for model, layers in keys:
        cells = [decision_cell(choose(rows, model, layers, b))
                 for b in budgets]
        lines.append('| ' + ' | '.join([model, str(layers)] + cells) + ' |')
    return '\n'.join(lines)
