"""The model inside MMEngine's data-parallel wrappers."""
from mmengine.model import is_model_wrapper
from torch import nn


def unwrap_model(model: nn.Module) -> nn.Module:
    """``model.module`` for a DDP-style wrapper, else ``model``."""
    return model.module if is_model_wrapper(model) else model
