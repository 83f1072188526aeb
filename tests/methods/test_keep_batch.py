"""HOSVD with the batch mode kept whole: the option reaches every
compressed layer, names its runs, is checked, and an allocation with it
takes the paper's HOSVD bytes as its budget (and its setting where
nothing else fits)."""
import pytest

from mmseg_hosvd.engine import CompressConvHook
from mmseg_hosvd.methods import get_method
from mmseg_hosvd.planning.allocation_session import GradientAllocationSession

from ..helpers import build_model


def test_keep_batch_reaches_every_compressed_layer_and_names_the_run():
    model = build_model('pspnet')
    plan = CompressConvHook(num_layers=5, keep_batch=True).apply(model)
    assert plan['keep_batch'] is True
    assert all(model.get_submodule(n).decomposition.keep_batch
               for n in plan['compressed'])
    assert 'keep_batch=True' in repr(model.get_submodule(
        plan['compressed'][0]))
    hosvd = get_method('hosvd')
    assert hosvd.tag(plan.options) == 'hosvd-eps0.8-keepbatch'
    assert hosvd.label(plan.options) == 'eps=0.8, batch mode kept'
    plain = CompressConvHook(num_layers=5).apply(build_model('pspnet'))
    assert hosvd.tag(plain.options) == 'hosvd-eps0.8'


def test_a_bad_keep_batch_is_named():
    with pytest.raises(ValueError, match='keep_batch must be True or '
                       'False, got 1'):
        CompressConvHook(num_layers=5, keep_batch=1)


@pytest.mark.parametrize('keep_batch', [False, True])
def test_the_budget_is_the_paper_hosvd_at_budget_of(keep_batch):
    """With the batch mode kept, ``budget_of=0.8`` is what the paper's
    HOSVD (batch mode truncated) stores at eps 0.8, measured beside the
    grid; without it, the grid's own eps 0.8."""
    model = build_model('pspnet')
    hook = CompressConvHook(num_layers=5, keep_batch=keep_batch,
                            allocate=dict(budget_of=0.8, grid=[0.5, 0.9]))
    plan = hook.apply(model)
    session = GradientAllocationSession(get_method('hosvd'), plan)
    reference = session.budget_candidate()
    if not keep_batch:
        assert reference is None
        return
    assert reference.options['keep_batch'] is False
    assert reference.options['eps'] == 0.8
    assert reference.tag == 'budget: eps=0.8'
    assert all(c.options['keep_batch'] for c in session.candidates())


def test_the_budget_setting_is_set_on_a_kept_batch_layer():
    """An allocation that falls back to the budget's own setting on a
    layer gives it eps and a truncated batch mode; a plain eps leaves the
    batch mode as the run has it."""
    model = build_model('deeplabv3')
    plan = CompressConvHook(num_layers=5, keep_batch=True).apply(model)
    hosvd = get_method('hosvd')
    setting = hosvd.budget_setting(0.6)
    assert setting == dict(eps=0.6, keep_batch=False, spatial_eps=None)
    first, second = (model.get_submodule(n) for n in plan.compressed[:2])
    hosvd.set_layer_setting(first, setting)
    hosvd.set_layer_setting(second, 0.7)
    assert (first.eps, first.decomposition.eps) == (0.6, 0.6)
    assert first.decomposition.keep_batch is False
    assert (second.eps, second.decomposition.eps) == (0.7, 0.7)
    assert second.decomposition.keep_batch is True
    assert get_method('quantized').budget_setting(4) == 4
