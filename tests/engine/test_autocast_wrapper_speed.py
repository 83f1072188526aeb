"""AutocastOptimWrapper times its dtype on the first step and warns when
it is far slower than float32 (a processor without bfloat16 arithmetic)."""
import logging

import torch
from mmengine.logging import MMLogger
from torch import nn

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


def test_the_first_step_times_the_dtype_and_warns_when_slow():
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
    assert wrapper.slowdown > 0
    warnings = [m for m in records.messages
                if m.startswith('mixed precision: a bfloat16 '
                                'convolution takes ')]
    # timed once, and a warning exactly when this machine is slow
    assert len(warnings) == (1 if wrapper.slowdown > SLOW_FACTOR else 0)
