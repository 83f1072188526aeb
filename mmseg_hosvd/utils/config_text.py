"""MMEngine formats a config's text anew each time it is asked for.

``Config.pretty_text`` runs yapf over the whole config text on every call,
and a training run asks for it several times with the same config: the
config log, the dumped config in the work dir, the run's meta and every
checkpoint's meta (0.2-0.6 s each for a protocol config, timed on a
2-core CPU machine under load). :func:`cache_config_formatting` keeps
yapf's answer for each text it formatted, so the same text is formatted
once per process. The cache is keyed by the text and style themselves:
a changed config gives another text and is formatted anew.
"""
import functools

from mmengine.config import config as config_module

#: Texts kept per process (a config's text is a few kB).
CACHE_SIZE = 64


def _hashable(value):
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def cache_config_formatting() -> bool:
    """Makes MMEngine's ``Config.pretty_text`` format each text once.

    Returns:
        True if it was installed now, False if it already was.
    """
    format_code = config_module.FormatCode
    if hasattr(format_code, 'cache_info'):
        return False

    @functools.lru_cache(maxsize=CACHE_SIZE)
    def cached(source, style_key, kwargs_key):
        style = dict(style_key) if isinstance(style_key, tuple) else style_key
        return format_code(source, style_config=style, **dict(kwargs_key))

    @functools.wraps(format_code)
    def format_once(source, style_config=None, **kwargs):
        return cached(source, _hashable(style_config),
                      _hashable(kwargs))

    format_once.cache_info = cached.cache_info
    format_once.cache_clear = cached.cache_clear
    format_once.original = format_code
    config_module.FormatCode = format_once
    return True
