"""AutocastOptimWrapper times its dtype on the first step and warns when
it is far slower than float32 (a processor without bfloat16 arithmetic)."""
import logging

import pytest
import torch
from mmengine.logging import MMLogger
from torch import nn

from mmseg_hosvd.engine import autocast_optim_wrapper
from mmseg_hosvd.engine.autocast_optim_wrapper import (
    SLOW_FACTOR,
    AutocastOptimWrapper,
)


class Records(logging.Handler):

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def train_two_steps():
    """Two autocast steps of a small model; the wrapper and the warnings
    logged."""
    model = nn.Conv2d(3, 4, 3)
    wrapper = AutocastOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    logger = MMLogger.get_current_instance()
    records = Records()
    logger.addHandler(records)
    try:
        for _ in range(2):
            with wrapper.optim_context(model):
                out = model(torch.randn(1, 3, 8, 8))
            assert out.dtype == torch.bfloat16
    finally:
        logger.removeHandler(records)
    return wrapper, [m for m in records.messages
                     if m.startswith('mixed precision: a bfloat16 '
                                     'convolution takes ')]


def test_this_machine_is_timed_and_warned_about_when_slow():
    wrapper, warnings = train_two_steps()
    assert wrapper.slowdown > 0
    assert len(warnings) == (1 if wrapper.slowdown > SLOW_FACTOR else 0)


@pytest.mark.parametrize('slowdown,warned', [(100., 1), (1.2, 0)])
def test_the_dtype_is_timed_once_and_a_slow_one_warned_about(
        monkeypatch, slowdown, warned):
    calls = []

    def timed(device_type, dtype):
        calls.append((device_type, dtype))
        return slowdown

    monkeypatch.setattr(autocast_optim_wrapper, 'autocast_slowdown', timed)
    wrapper, warnings = train_two_steps()
    assert calls == [('cpu', torch.bfloat16)]
    assert wrapper.slowdown == slowdown
    assert len(warnings) == warned
    if warned:
        assert warnings[0].startswith('mixed precision: a bfloat16 '
                                      'convolution takes 100 times as long')
