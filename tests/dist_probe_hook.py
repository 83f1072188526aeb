"""A hook for the distributed test: each rank dumps what it ended with."""
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from mmseg_hosvd.engine.hooks.unwrap import unwrap_model
from mmseg_hosvd.models import CompressedConv2d


@HOOKS.register_module()
class DistProbeTestHook(Hook):
    """Saves ``rank{r}.pth``: weights, and which convs stored compressed."""

    priority = 'LOWEST'

    def after_train(self, runner):
        model = unwrap_model(runner.model)
        stored = {
            n: m.last_stored is not None and m.last_stored.ranks is not None
            for n, m in model.named_modules()
            if isinstance(m, CompressedConv2d)
        }
        torch.save(
            dict(state_dict={k: v.detach().clone()
                             for k, v in model.state_dict().items()},
                 compressed=stored,
                 world_size=runner.world_size,
                 wrapper=type(runner.model).__name__),
            osp.join(runner.work_dir, f'rank{get_rank()}.pth'))
