"""One object for how HOSVD-eps decomposes: thresholds, solver and seed.

The public functional entry points keep TensorLy-like flat keyword arguments
(``eps``, ``solver``, ``seed``) and also take a ``settings`` object whole;
everything below them passes the object.
"""
import dataclasses
from typing import Optional

from .checks import check_eps, check_int_at_least, check_solver


def check_seed(seed: int) -> int:
    """Validates the seed of the randomized solver.

    Args:
        seed: An int >= 0.

    Returns:
        ``seed``.

    Raises:
        ValueError: If ``seed`` is not an int >= 0.
    """
    return check_int_at_least('seed', seed, 0)


def check_keep_batch(keep_batch: bool) -> bool:
    """Validates the switch that keeps the batch mode whole.

    Args:
        keep_batch: True or False.

    Returns:
        ``keep_batch``.

    Raises:
        ValueError: For any other value, which the message names.
    """
    if not isinstance(keep_batch, bool):
        raise ValueError(f'keep_batch must be True or False, got '
                         f'{keep_batch!r}')
    return keep_batch


def check_spatial_eps(spatial_eps: Optional[float]) -> Optional[float]:
    """Validates the threshold of the spatial modes.

    Args:
        spatial_eps: None (the spatial modes take ``eps``) or a number in
            (0, 1].

    Returns:
        ``spatial_eps`` as a float, or None.

    Raises:
        ValueError: For any other value, which the message names.
    """
    return None if spatial_eps is None else check_eps(spatial_eps,
                                                      'spatial_eps')


@dataclasses.dataclass(frozen=True)
class DecompositionSettings:
    """How HOSVD-eps finds each mode's leading vectors.

    Args:
        eps: Explained-variance threshold in (0, 1], per mode (stored as a
            float); with ``spatial_eps``, of the batch and channel modes.
        solver: One of :data:`~mmseg_hosvd.ops.checks.SOLVERS`: 'auto'
            (Ritz for large, not-too-wide unfoldings, eigh for the others),
            'eigh' (the paper's exact ranks) or 'ritz' (Ritz wherever it
            works, eigh where it gives up).
        seed: Seed of the Ritz solver's private generator, an int >= 0.
        keep_batch: Keep the first mode (the batch) whole: its factor is
            the identity, so every sample keeps its own slice of the core
            and only the other modes are truncated at ``eps``.
        spatial_eps: The threshold of the spatial modes (a convolution
            input's height and width, a Linear input's token modes: every
            mode but the first and the channel mode), in (0, 1]; None
            (default) truncates them at ``eps`` too.

    Raises:
        ValueError: If a value is out of range; the message names it.
    """
    eps: float = 0.8
    solver: str = 'auto'
    seed: int = 0
    keep_batch: bool = False
    spatial_eps: Optional[float] = None

    def __post_init__(self):
        object.__setattr__(self, 'eps', check_eps(self.eps))
        check_solver(self.solver)
        check_seed(self.seed)
        check_keep_batch(self.keep_batch)
        object.__setattr__(self, 'spatial_eps',
                           check_spatial_eps(self.spatial_eps))

    def spatial(self) -> 'DecompositionSettings':
        """What each spatial mode is solved with.

        Returns:
            These settings with ``eps`` the spatial modes' threshold
            (themselves where ``spatial_eps`` is None or ``eps``).
        """
        if self.spatial_eps is None or self.spatial_eps == self.eps:
            return self
        return dataclasses.replace(self, eps=self.spatial_eps)


def resolve_settings(settings: Optional[DecompositionSettings],
                     eps: Optional[float],
                     solver: str = 'auto',
                     seed: int = 0,
                     eps_default: Optional[float] = 0.8
                     ) -> DecompositionSettings:
    """The settings of a call that takes flat arguments and ``settings``.

    Without ``settings`` the flat arguments make the settings. With it, a
    flat argument left at its default defers to ``settings``, and one set
    to another value must agree with it.

    Args:
        settings: The caller's settings object, or None.
        eps: The call's ``eps`` argument.
        solver: The call's ``solver`` argument (default 'auto').
        seed: The call's ``seed`` argument (default 0).
        eps_default: The default of the call's ``eps`` argument.

    Returns:
        The settings to use.

    Raises:
        TypeError: If ``settings`` is not a :class:`DecompositionSettings`.
        ValueError: If a value is out of range, or a flat argument
            disagrees with ``settings``.
    """
    if settings is None:
        return DecompositionSettings(eps, solver, seed)
    if not isinstance(settings, DecompositionSettings):
        raise TypeError('settings must be a DecompositionSettings, got '
                        f'{settings!r}')
    flat = (('eps', eps, eps_default), ('solver', solver, 'auto'),
            ('seed', seed, 0))
    for name, value, default in flat:
        chosen = getattr(settings, name)
        if value != default and value != chosen:
            raise ValueError(f'{name}={value!r} disagrees with settings.'
                             f'{name}={chosen!r}; pass one or the other')
    return settings
