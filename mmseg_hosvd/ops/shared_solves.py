"""One solve per mode and threshold while many settings decompose one tensor.

Measuring the gradient error of a grid of settings decomposes the same
captured input once per setting: with an eps grid and a spatial eps grid,
the channel mode of one input is solved at each eps once for every spatial
eps, although what a mode's solve reads (the tensor, the mode, its eps,
the solver and the seed) is the same each time. Inside
:func:`shared_mode_solves`, :func:`~.decomposition.hosvd` keeps each cold
solve (one without a warm start) of a mode and hands the same solution to
the next decomposition that asks for it: the same vectors that solving
again would give, since every solver is deterministic for its seed.
Outside it, as in training, every mode is solved each time.
"""
import contextlib
import weakref
from contextvars import ContextVar
from typing import Callable, Dict, Iterator, Optional, Tuple

import torch

from .decomposition_settings import DecompositionSettings
from .solvers import Solution

_ACTIVE: ContextVar[Optional['SharedSolves']] = ContextVar(
    'shared_mode_solves', default=None)


class SharedSolves:
    """The cold solves of the modes of live tensors, by threshold.

    A solution is keyed by the tensor (held by a weak reference: a tensor
    that is gone, or one modified in place since, is solved again; one
    whose ``.data`` was replaced is not told apart, and an inference-mode
    tensor, which keeps no version, is not shared), the mode, and the
    settings a solver reads: ``eps``, ``solver`` and ``seed``. The
    solutions (with a Ritz solve, the projection of the input on its
    vectors too) stay alive until the context ends.
    """

    def __init__(self):
        self._solutions: Dict[tuple, Tuple[weakref.ref, Solution]] = {}
        self.solved = 0
        self.reused = 0

    def get(self, tensor: torch.Tensor, mode: int,
            settings: DecompositionSettings,
            solve: Callable[[], Solution]) -> Solution:
        """The solution of ``tensor``'s ``mode`` under ``settings``.

        Args:
            tensor: The tensor being decomposed.
            mode: The mode solved (in the order the decomposition unfolds).
            settings: What the mode is solved with.
            solve: Solves it, cold, when no solution is kept.

        Returns:
            The kept solution, or the one ``solve`` gives now.
        """
        if tensor.is_inference():
            return solve()
        key = (id(tensor), tensor._version, mode, settings.eps,
               settings.solver, settings.seed)
        kept = self._solutions.get(key)
        if kept is not None and kept[0]() is tensor:
            self.reused += 1
            return kept[1]
        solution = solve()
        self._solutions[key] = (weakref.ref(tensor), solution)
        self.solved += 1
        return solution


@contextlib.contextmanager
def shared_mode_solves() -> Iterator[SharedSolves]:
    """A context in which decompositions share their modes' cold solves.

    Yields:
        The :class:`SharedSolves`; its ``solved`` and ``reused`` count
        the solves run and those handed on. The solutions are dropped on
        exit.
    """
    shared = SharedSolves()
    token = _ACTIVE.set(shared)
    try:
        yield shared
    finally:
        _ACTIVE.reset(token)


def solve_cold(tensor: torch.Tensor, mode: int,
               settings: DecompositionSettings,
               solve: Callable[[], Solution]) -> Solution:
    """``solve()``, or inside :func:`shared_mode_solves` the solution an
    earlier decomposition of ``tensor`` found for ``mode`` at the same
    threshold, solver and seed.

    Args:
        tensor: The tensor being decomposed.
        mode: The mode solved.
        settings: What the mode is solved with.
        solve: Solves the mode without a warm start.
    """
    shared = _ACTIVE.get()
    if shared is None:
        return solve()
    return shared.get(tensor, mode, settings, solve)
