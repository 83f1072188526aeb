"""The planner's choice among measured set-ups."""
import pytest

from mmseg_hosvd.planning.recommendation import Measured, recommend

VANILLA = Measured('vanilla', True, 40.0, 1.0, 0.0)
EXACT_SLOW = Measured('vanilla-exact-mb1', True, 20.0, 3.0, 0.0)
EXACT = Measured('vanilla-exact', True, 36.0, 1.1, 0.0)
HOSVD = Measured('hosvd-eps0.8', False, 27.0, 1.2, 1.5)
ALLOC = Measured('hosvd-eps-alloc0.8', False, 27.0, 1.3, 1.2)
QACT2 = Measured('qact2', False, 30.0, 0.9, 2.5)
ALL = [VANILLA, EXACT_SLOW, EXACT, HOSVD, ALLOC, QACT2]


def test_an_exact_set_up_that_fits_comes_first():
    assert recommend(ALL, 50) == VANILLA
    assert recommend(ALL, 38) == EXACT


def test_a_slow_exact_set_up_yields_to_the_least_gradient_error():
    # mb1 fits 25 MB alone among the exact ones, but takes 3.0 s where
    # allocation takes 1.3 (more than twice)
    assert recommend(ALL, 28) == ALLOC
    assert recommend(ALL, 28, time_factor=3) == EXACT_SLOW
    assert recommend(ALL, 22) == EXACT_SLOW


def test_a_slow_compressed_set_up_yields_to_a_timely_one():
    """bfloat16 autocast on a processor without bfloat16 arithmetic: the
    least error, but a hundred times slower."""
    slow = Measured('vanilla-exact-amp', False, 25.0, 100.0, 0.1)
    assert recommend([HOSVD, ALLOC, slow], 28) == ALLOC
    assert recommend([HOSVD, ALLOC, slow], 28, time_factor=100) == slow
    assert recommend([HOSVD, ALLOC, slow], 26) == slow  # it alone fits


def test_unmeasured_errors_come_last():
    unmeasured = Measured('x', False, 10.0, 1.0, None)
    assert recommend([unmeasured, HOSVD], 30) == HOSVD
    assert recommend([unmeasured, HOSVD], 15) == unmeasured


def test_a_budget_below_every_peak_names_the_smallest():
    with pytest.raises(ValueError, match=r'no set-up fits 10 MB: the '
                       r'smallest measured whole-step peak is 20.0 MB '
                       r'\(vanilla-exact-mb1\)'):
        recommend(ALL, 10)


@pytest.mark.parametrize('kwargs,match', [
    (dict(measurements=[], budget_mb=10), 'no set-ups were measured'),
    (dict(measurements=ALL, budget_mb=0), 'budget_mb must be > 0, got 0'),
    (dict(measurements=ALL, budget_mb=10, time_factor=0.5),
     'time_factor must be >= 1, got 0.5'),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        recommend(**kwargs)
