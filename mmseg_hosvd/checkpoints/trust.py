"""Whether checkpoints are trusted: the explicit opt-ins.

:mod:`mmseg_hosvd.checkpoints.loading` refuses a checkpoint that needs more
than MMEngine checkpoints hold, unless one of these opt-ins is active: the
environment variable ``MMSEG_HOSVD_TRUST_CHECKPOINTS=1``, the config key
``trust_checkpoint = True`` (read by ``tools/train.py`` and
``tools/test.py``), or :func:`trusted_checkpoints` in Python. Like
:mod:`.loading`, this module imports nothing else from mmseg_hosvd
(the start-up hook loads it without the package).
"""
import contextlib
import contextvars
import os

#: Environment variable that trusts every checkpoint when set to ``1``.
TRUST_ENV = 'MMSEG_HOSVD_TRUST_CHECKPOINTS'
#: Top-level config key that trusts the run's checkpoints.
TRUST_CONFIG_KEY = 'trust_checkpoint'
_trusted = contextvars.ContextVar('mmseg_hosvd_trusted_checkpoints',
                                  default=False)


def env_trusts_checkpoints() -> bool:
    """Whether ``MMSEG_HOSVD_TRUST_CHECKPOINTS`` is ``1``.

    Raises:
        ValueError: If it is set to anything but ``1``, ``0`` or nothing.
    """
    value = os.environ.get(TRUST_ENV, '')
    if value not in ('', '0', '1'):
        raise ValueError(f"{TRUST_ENV} must be '1' (trust every checkpoint) "
                         f"or '0', got {value!r}")
    return value == '1'


def checkpoints_trusted() -> bool:
    """Whether checkpoints are unpickled fully here (an opt-in is active)."""
    return _trusted.get() or env_trusts_checkpoints()


def config_trusts_checkpoints(cfg) -> bool:
    """The config's ``trust_checkpoint`` key (False when absent).

    Args:
        cfg: An MMEngine config (or dict).

    Raises:
        TypeError: If the key is not a bool.
    """
    value = cfg.get(TRUST_CONFIG_KEY, False)
    if not isinstance(value, bool):
        raise TypeError(
            f'{TRUST_CONFIG_KEY} must be True or False, got {value!r}')
    return value


@contextlib.contextmanager
def trusted_checkpoints(trust: bool = True):
    """Within the context, checkpoints are unpickled fully if ``trust``.

    Args:
        trust: Whether to trust them; False changes nothing (an enclosing
            opt-in or the environment variable still applies).
    """
    if not isinstance(trust, bool):
        raise TypeError(f'trust must be True or False, got {trust!r}')
    token = _trusted.set(trust or _trusted.get())
    try:
        yield
    finally:
        _trusted.reset(token)
