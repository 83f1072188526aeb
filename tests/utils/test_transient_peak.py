"""transient_peak_bytes: the allocator's peak while a function runs."""
import torch

from mmseg_hosvd.utils.step_memory import transient_peak_bytes

MB = 2**20


def test_a_freed_temporary_counts_and_what_was_live_does_not():
    live = torch.zeros(4 * MB // 4)  # 4 MB allocated before, not counted

    def two_temporaries():
        a = torch.ones(2 * MB // 4)
        b = torch.ones(3 * MB // 4)
        del a, b
        c = torch.ones(1 * MB // 4)
        del c

    peak = transient_peak_bytes(two_temporaries)
    # the 2 and 3 MB tensors were live together; the 4 MB one was there
    assert 5 * MB - 64 <= peak < 5.5 * MB  # less the 4-byte marker
    del live
