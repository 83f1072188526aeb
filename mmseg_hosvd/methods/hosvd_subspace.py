"""HOSVD at fixed ranks, refined each step by one subspace iteration."""
from ..layers.subspace_conv import Conv2dHOSVDSubspace
from ..layers.subspace_linear import LinearHOSVDSubspace
from .base import FinetuneMethod
from .options import EPS, SOLVER, Option, check_budget_mb, check_rank_batches
from .registry import FINETUNE_METHODS
from .subspace_rank_session import SubspaceRankSession


@FINETUNE_METHODS.register_module(name='hosvd_subspace')
class HOSVDSubspace(FinetuneMethod):
    """Ranks fixed once on the first ``rank_batches`` batches.

    Options: ``eps`` (per-mode ranks reaching it), or ``budget_mb`` (a
    greedy allocation of that many MB over all fine-tuned layers by
    explained variance gained per stored byte); ``solver`` is used until
    the ranks are set. The ranks are logged and kept in MessageHub, so a
    resume keeps them.
    """

    name = 'hosvd_subspace'
    tag_format = 'hosvd-subspace'
    module = Conv2dHOSVDSubspace
    linear_module = LinearHOSVDSubspace
    options = dict(eps=EPS, solver=SOLVER,
                   budget_mb=Option(None, check_budget_mb),
                   rank_batches=Option(1, check_rank_batches))
    shares_input = True
    marker = 'P'
    order = 4

    def label(self, meta):
        if meta.get('budget_mb') is not None:
            return f"budget={meta['budget_mb']:g}MB"
        solver = meta.get('solver')
        return f"eps={meta.get('eps')}" + (f', {solver}' if solver
                                           not in (None, 'auto') else
                                           '') + ', fixed'

    def module_kwargs(self, name, options, preset_radius):
        return dict(eps=options['eps'], solver=options['solver'])

    def session(self, plan):
        return SubspaceRankSession(plan)
