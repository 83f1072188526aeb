"""MallocTrimHook: argument checks, and trims at its interval in a Runner."""
import pytest
from mmengine.runner import Runner

from mmseg_hosvd.engine import MallocTrimHook
from mmseg_hosvd.engine.hooks.malloc_trim_hook import load_glibc_malloc_trim

from ..helpers import tiny_runner_config

needs_glibc = pytest.mark.skipif(load_glibc_malloc_trim() is None,
                                 reason='the C library is not glibc')


@pytest.mark.parametrize('bad', [0, -3, 2.5, True, '50'])
def test_interval_is_checked(bad):
    with pytest.raises(ValueError, match=f'got {bad!r}'):
        MallocTrimHook(interval=bad)


@needs_glibc
def test_protocol_runner_trims_every_interval(tiny_data, tmp_path):
    cfg = tiny_runner_config('fcn', str(tmp_path), tiny_data,
                             max_iters=4)
    assert cfg.default_hooks.malloc_trim.type == 'MallocTrimHook'
    cfg.default_hooks.malloc_trim.interval = 2
    runner = Runner.from_cfg(cfg)
    hook = next(h for h in runner.hooks if isinstance(h, MallocTrimHook))
    calls = []
    trim = hook._trim

    def counting_trim(pad):
        calls.append(runner.iter)
        return trim(pad)

    hook._trim = counting_trim
    runner.train()
    assert calls == [1, 3]
