"""Which measured errors make a probe's gradient error."""
import pytest

from mmseg_hosvd.planning.probe_runs import probe_error
from mmseg_hosvd.planning.setups import get_setup

#: The errors of the layers' gradients taken together (what the planner
#: ranks by) beside the sums of the layers' own (which it does not).
META = dict(finetune=dict(allocation_whole_error=0.5,
                          allocation_relative_error=1.5),
            autocast_gradient_error=dict(whole_relative_error=0.01,
                                         relative_error=0.04))


@pytest.mark.parametrize('name,error', [
    ('vanilla-exact-mb2', 0.0),
    ('hosvd-eps0.8', 0.5),
    ('qact2', 0.5),
    ('vanilla-exact-amp', 0.01),
    ('hosvd-eps0.8-lean-amp', 0.51),
])
def test_the_error_is_the_set_up_s_measured_parts(name, error):
    assert probe_error(META, get_setup(name)) == pytest.approx(error)


@pytest.mark.parametrize('name', ['hosvd-eps0.8', 'vanilla-exact-amp',
                                  'hosvd-eps0.8-lean-amp'])
def test_a_part_not_measured_leaves_the_error_unknown(name):
    assert probe_error({}, get_setup(name)) is None
    half = dict(finetune=META['finetune'])
    if get_setup(name).autocast:
        assert probe_error(half, get_setup(name)) is None
