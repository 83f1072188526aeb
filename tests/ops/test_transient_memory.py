"""The decompositions and the quantization keep their temporaries small."""
import json

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from mmseg_hosvd.ops import hosvd, mode_dot, quantize


def transient_bytes(fn, tmp_path) -> int:
    """Most bytes the allocator handed out at once during ``fn()``."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True,
                 record_shapes=True, with_stack=True) as prof:
        fn()
    path = tmp_path / 'timeline.json'
    prof.export_memory_timeline(str(path), device='cpu')
    _, sizes = json.loads(path.read_text())
    totals = [sum(s) for s in sizes]
    return max(totals) - totals[0]


@pytest.mark.parametrize('layout', [torch.contiguous_format,
                                    torch.channels_last])
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
@pytest.mark.parametrize('solver', ['eigh', 'auto'])
def test_hosvd_copies_no_unfolding_whole(solver, dtype, layout, tmp_path):
    gen = torch.Generator().manual_seed(0)
    x = torch.einsum('bkhw,ck->bchw', torch.randn(4, 3, 64, 64, generator=gen),
                     torch.randn(64, 3, generator=gen)).to(dtype).contiguous(
                         memory_format=layout)
    size = x.numel() * x.element_size()
    used = transient_bytes(lambda: hosvd(x, eps=0.9, solver=solver),
                           tmp_path)
    # one chunk at a time (an eighth of the input in float32, so a quarter
    # of a bfloat16 input), 64 x 64 Gram matrices and their eigensolver,
    # the factors and the first mode product (a tenth of the input here);
    # one unfolding copied whole would be 1x the input, and a bfloat16
    # input cast whole to float32 2x; a channels-last input is read where
    # it lies, not made contiguous (1x)
    assert used < size * 0.4


def test_mode_products_copy_nothing_full_size(tmp_path):
    x = torch.randn(4, 256, 32, 32)
    factor = torch.randn(3, 256)
    used = transient_bytes(lambda: mode_dot(x, factor, 1), tmp_path)
    assert used < x.numel() * x.element_size() / 10


@pytest.mark.parametrize('bits', [2, 8])
def test_quantization_temporaries_do_not_grow_with_the_input(bits,
                                                            tmp_path):
    x = torch.randn(16, 256, 64, 64)  # 64 MB
    size = x.numel() * x.element_size()
    used = transient_bytes(lambda: quantize(x, bits, 256), tmp_path)
    # the packed codes (bits / 32 of the input) and one chunk's floats
    assert used < size * (bits / 32 + 0.25)
