"""Allocation by gradient error under a byte budget: exact against
enumerating every choice."""
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmseg_hosvd.planning import (
    CandidateError,
    allocate,
    criterion_errors,
    uniform_bytes,
)


def brute_force(errors, budget, weights):
    layers = {}
    for c in errors:
        layers.setdefault(c.layer, []).append(c)
    best = None
    for choice in itertools.product(*layers.values()):
        used = sum(c.stored_bytes for c in choice)
        if used > budget:
            continue
        error = sum(weights.get(c.layer, 1.0) * c.error for c in choice)
        if best is None or (error, used) < best:
            best = (error, used)
    return best


@st.composite
def problems(draw):
    layers = draw(st.integers(1, 5))
    errors = [
        CandidateError(f'layer{i}', f'c{j}', draw(st.floats(0, 1)),
                       float(draw(st.integers(1, 50))))
        for i in range(layers) for j in range(draw(st.integers(1, 4)))
    ]
    weights = {f'layer{i}': draw(st.floats(0.1, 3))
               for i in range(layers) if draw(st.booleans())}
    return errors, float(draw(st.integers(0, 200))), weights


@settings(max_examples=200, deadline=None)
@given(problems())
def test_the_allocation_is_the_best_choice(problem):
    errors, budget, weights = problem
    best = brute_force(errors, budget, weights)
    if best is None:
        with pytest.raises(ValueError, match='is below the smallest total'):
            allocate(errors, budget, weights)
        return
    got = allocate(errors, budget, weights)
    assert got.error == pytest.approx(best[0])
    assert got.stored_bytes <= budget
    assert list(got.choices) == list(dict.fromkeys(c.layer for c in errors))
    assert got.stored_bytes == pytest.approx(
        sum(c.stored_bytes for c in got.choices.values()))
    assert got.error == pytest.approx(sum(
        weights.get(name, 1.0) * c.error for name, c in got.choices.items()))


def test_a_bigger_budget_buys_the_less_erring_setting():
    errors = [CandidateError('a', 'eps0.5', 0.4, 10.0),
              CandidateError('a', 'eps0.9', 0.1, 30.0),
              CandidateError('b', 'eps0.5', 0.2, 10.0),
              CandidateError('b', 'eps0.9', 0.05, 30.0)]
    assert [c.tag for c in allocate(errors, 20).choices.values()] == [
        'eps0.5', 'eps0.5']
    # 20 more bytes go where they cut the error most: layer a
    assert [c.tag for c in allocate(errors, 40).choices.values()] == [
        'eps0.9', 'eps0.5']
    assert [c.tag for c in allocate(errors, 60).choices.values()] == [
        'eps0.9', 'eps0.9']


def test_bad_budgets_and_weights_are_named():
    errors = [CandidateError('a', 'x', 0.1, 10.0),
              CandidateError('b', 'x', 0.1, 5.0)]
    with pytest.raises(ValueError, match='budget of 14 bytes is below the '
                       'smallest total the candidates store, 15 bytes'):
        allocate(errors, 14)
    with pytest.raises(ValueError, match='budget_bytes must be >= 0, got -1'):
        allocate(errors, -1)
    with pytest.raises(ValueError, match='no candidates'):
        allocate([], 10)
    with pytest.raises(ValueError, match=r"weights name layers without "
                       r"candidates: \['c'\]"):
        allocate(errors, 20, dict(c=2.0))


def brute_force_grouped(errors, budget, groups):
    layers = {}
    for c in errors:
        layers.setdefault(c.layer, {})[c.tag] = c
    grouped = {n: tuple(g) for g in groups for n in g}
    units = list(dict.fromkeys(grouped.get(n, (n, )) for n in layers))
    best = None
    for tags in itertools.product(*(sorted(layers[u[0]]) for u in units)):
        chosen = list(zip(units, tags, strict=True))
        if any(t not in layers[m] for u, t in chosen for m in u):
            continue
        used = sum(max(layers[m][t].stored_bytes for m in u)
                   for u, t in chosen)
        error = sum(layers[m][t].error for u, t in chosen for m in u)
        if used <= budget and (best is None or (error, used) < best):
            best = (error, used)
    return best


@st.composite
def grouped_problems(draw):
    layers = draw(st.integers(2, 6))
    tags = [f'c{j}' for j in range(draw(st.integers(1, 3)))]
    errors = [
        CandidateError(f'layer{i}', tag, draw(st.floats(0, 1)),
                       float(draw(st.integers(1, 50))))
        for i in range(layers) for tag in tags
    ]
    size = draw(st.integers(2, layers))
    start = draw(st.integers(0, layers - size))
    group = [f'layer{i}' for i in range(start, start + size)]
    return errors, float(draw(st.integers(0, 200))), [group]


@settings(max_examples=200, deadline=None)
@given(grouped_problems())
def test_a_shared_input_group_takes_one_setting_and_counts_it_once(problem):
    errors, budget, groups = problem
    best = brute_force_grouped(errors, budget, groups)
    if best is None:
        with pytest.raises(ValueError, match='is below the smallest total'):
            allocate(errors, budget, groups=groups)
        return
    got = allocate(errors, budget, groups=groups)
    assert got.error == pytest.approx(best[0])
    assert got.stored_bytes <= budget
    assert len({got.choices[name].tag for name in groups[0]}) == 1
    assert list(got.choices) == list(dict.fromkeys(c.layer for c in errors))


def test_a_group_stores_its_input_once():
    # two branches reading one input: 10 bytes each alone, 10 together
    errors = [CandidateError(n, t, e, b) for n, t, e, b in [
        ('aspp0', 'eps0.5', 0.4, 10.0), ('aspp0', 'eps0.9', 0.1, 30.0),
        ('aspp1', 'eps0.5', 0.4, 10.0), ('aspp1', 'eps0.9', 0.1, 30.0),
        ('head', 'eps0.5', 0.3, 10.0), ('head', 'eps0.9', 0.2, 30.0)]]
    groups = [['aspp0', 'aspp1']]
    assert uniform_bytes(errors, 'eps0.9', groups) == 60.0
    assert uniform_bytes(errors, 'eps0.9') == 90.0
    got = allocate(errors, 40.0, groups=groups)
    # counted once, the group's 20 extra bytes cut 0.6 of error, the
    # head's cut 0.1
    assert [c.tag for c in got.choices.values()] == ['eps0.9', 'eps0.9',
                                                     'eps0.5']
    assert got.stored_bytes == 40.0


def test_bad_groups_are_named():
    errors = [CandidateError('a', 'x', 0.1, 10.0),
              CandidateError('b', 'y', 0.1, 5.0)]
    with pytest.raises(ValueError, match=r"group \['a', 'c'\] names 'c', "
                       'which has no candidates'):
        allocate(errors, 20, groups=[['a', 'c']])
    with pytest.raises(ValueError, match=r"group \['a', 'b'\] have no "
                       'candidate in common'):
        allocate(errors, 20, groups=[['a', 'b']])
    with pytest.raises(ValueError, match="layer 'a' is in two"):
        allocate(errors, 20, groups=[['a'], ['a']])
    with pytest.raises(ValueError, match=r"no candidate 'x' for layers "
                       r"\['b'\]"):
        uniform_bytes(errors, 'x')


def test_the_whole_criterion_sums_squared_gradient_errors():
    """'whole' weighs a layer by its gradient: the small error of a large
    gradient counts more than the large error of a small one, so the
    bytes go to layer 'a'; 'layers' gives them to 'b'."""
    errors = [CandidateError('a', 'low', 0.3, 10.0, gradient_norm=10.0),
              CandidateError('a', 'high', 0.1, 30.0, gradient_norm=10.0),
              CandidateError('b', 'low', 0.9, 10.0, gradient_norm=0.5),
              CandidateError('b', 'high', 0.2, 30.0, gradient_norm=0.5)]
    whole = criterion_errors(errors, 'whole')
    assert [c.error for c in whole] == pytest.approx(
        [9.0, 1.0, 0.2025, 0.01])
    picks = {criterion: {n: c.tag for n, c in allocate(
        criterion_errors(errors, criterion), 40.0).choices.items()}
             for criterion in ('layers', 'whole')}
    assert picks == dict(layers=dict(a='low', b='high'),
                         whole=dict(a='high', b='low'))
    assert criterion_errors(errors, 'layers') == errors


def test_bad_criteria_are_named():
    with pytest.raises(ValueError, match="criterion must be 'layers' or "
                       "'whole', got 'sum'"):
        criterion_errors([], 'sum')
    with pytest.raises(ValueError, match=r"criterion 'whole' needs each "
                       r"layer's gradient norm; not measured for \['a'\]"):
        criterion_errors([CandidateError('a', 'x', 0.1, 1.0)], 'whole')
