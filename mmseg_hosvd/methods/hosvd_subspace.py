"""HOSVD at fixed ranks, refined each step by one subspace iteration."""
from ..layers.subspace_conv import Conv2dHOSVDSubspace
from ..layers.subspace_linear import LinearHOSVDSubspace
from .base import FinetuneMethod
from .hosvd import GRID, eps_label, set_eps
from .options import (
    EPS,
    SOLVER,
    Option,
    allocation,
    check_budget_mb,
    check_rank_batches,
    per_layer,
)
from .registry import FINETUNE_METHODS
from .subspace_rank_session import SubspaceRankSession


@FINETUNE_METHODS.register_module(name='hosvd_subspace')
class HOSVDSubspace(FinetuneMethod):
    """Ranks fixed once on the first ``rank_batches`` batches.

    Options: ``eps`` (per-mode ranks reaching it; one value or a dict by
    layer name), ``allocate`` (each layer's eps from a grid by the least
    summed weight-gradient error within a byte budget, as for ``hosvd``;
    the ranks then reach each layer's eps), or ``budget_mb`` (a greedy
    allocation of that many MB over all fine-tuned layers by explained
    variance gained per stored byte); ``solver`` is used until the ranks
    are set. The ranks are logged and kept in MessageHub, so a resume
    keeps them.
    """

    name = 'hosvd_subspace'
    tag_format = 'hosvd-subspace'
    module = Conv2dHOSVDSubspace
    linear_module = LinearHOSVDSubspace
    options = dict(eps=Option(EPS.default, per_layer(EPS.check)),
                   solver=SOLVER,
                   budget_mb=Option(None, check_budget_mb),
                   rank_batches=Option(1, check_rank_batches),
                   allocate=Option(None, allocation(EPS.check, GRID)))
    per_layer = 'eps'
    shares_input = True
    marker = 'P'
    order = 4

    def check_options(self, given):
        options = super().check_options(given)
        if options['budget_mb'] is not None and (options['allocate'] is
                                                 not None):
            raise ValueError(
                'hosvd_subspace takes budget_mb (ranks by explained '
                'variance per byte) or allocate (eps per layer by gradient '
                'error), not both')
        return options

    def set_layer_setting(self, module, value):
        set_eps(module, value)

    def label(self, meta):
        if meta.get('budget_mb') is not None:
            return f"budget={meta['budget_mb']:g}MB"
        solver = meta.get('solver')
        return eps_label(self, meta) + (f', {solver}' if solver not in (
            None, 'auto') else '') + ', fixed'

    def module_kwargs(self, name, options, preset_radius):
        return dict(eps=self.layer_options(name, options)['eps'],
                    solver=options['solver'])

    def session(self, plan):
        return SubspaceRankSession(plan)
