"""selmatch.malloc: freed training memory is reused inside the block and handed back on leaving it."""
import resource

import pytest
import torch

from selmatch import malloc

pytestmark = pytest.mark.skipif(not malloc.enabled(), reason="glibc only")

MB = 2**20


def _faults(n: int = 6) -> int:
    """Minor page faults of ``n`` training-step-like rounds: four activations of 40-64 MB written, then freed."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        step = [torch.empty(mb * MB // 4).fill_(1.0) for mb in (64, 40, 64, 48)]
        del step
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


ROUND_PAGES = (64 + 40 + 64 + 48) * MB // resource.getpagesize()


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / MB


def test_freed_tensors_are_reused_inside_the_block():
    outside = _faults()                       # glibc: each 64 MB tensor is a fresh mmap, faulted in page by page
    with malloc.reuse_freed_memory():
        _faults(1)                            # the first one grows the heap
        inside = _faults()
    assert outside > 6 * ROUND_PAGES / 2      # the baseline does fault (not vacuous)
    assert inside < outside / 10


def test_leaving_the_block_returns_the_memory():
    base = _rss_mb()
    with malloc.reuse_freed_memory():
        x = torch.ones(256 * MB // 4)
        del x
        assert _rss_mb() > base + 200         # kept for reuse while inside
    assert _rss_mb() < base + 64              # malloc_trim handed it back


def test_nested_blocks_act_once():
    with malloc.reuse_freed_memory():
        with malloc.reuse_freed_memory():
            pass
        _faults(1)
        assert _faults() < 6 * ROUND_PAGES / 10   # the inner exit did not restore glibc


def test_system_mode_and_bad_values(monkeypatch):
    monkeypatch.setenv("SELMATCH_MALLOC", "system")
    assert not malloc.enabled()
    with malloc.reuse_freed_memory():
        assert _faults() > 6 * ROUND_PAGES / 2
    monkeypatch.setenv("SELMATCH_MALLOC", "jemalloc")
    with pytest.raises(ValueError, match="SELMATCH_MALLOC='jemalloc'.*'reuse'.*'system'"):
        malloc.enabled()
