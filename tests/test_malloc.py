"""selmatch.fast.malloc: freed training memory is reused inside the block and handed back on leaving it."""
import json
import os
import resource
import subprocess
import sys

import pytest
import torch

from selmatch.fast import malloc

pytestmark = pytest.mark.skipif(not malloc.enabled(), reason="glibc only")

MB = 2**20
ROUND_PAGES = (64 + 40 + 64 + 48) * MB // resource.getpagesize()

# Page faults are counted in a fresh process: a long-lived one (this test session) may already hold free heap
# chunks big enough to serve these tensors, which would make glibc's own behaviour look like reuse.
PROBE = """
import json, resource, torch
from selmatch.fast import malloc

def faults(n=6):   # n training-step-like rounds: four activations of 40-64 MB written, then freed
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        step = [torch.empty(mb * 2**20 // 4).fill_(1.0) for mb in (64, 40, 64, 48)]
        del step
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

out = {"outside": faults()}
with malloc.reuse_freed_memory():
    faults(1)                          # the first round grows the heap
    out["inside"] = faults()
    with malloc.reuse_freed_memory():
        pass
    out["after_inner_exit"] = faults()  # still inside the outer block
print(json.dumps(out))
"""


def _probe(mode: str) -> dict:
    env = {**os.environ, "SELMATCH_MALLOC": mode}
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_freed_tensors_are_reused_inside_the_block_and_nesting_acts_once():
    f = _probe("reuse")
    assert f["outside"] > 6 * ROUND_PAGES / 2          # glibc's own behaviour: every round faulted in again
    assert f["inside"] < f["outside"] / 10
    assert f["after_inner_exit"] < f["outside"] / 10   # the inner block's exit did not restore glibc


def test_system_mode_leaves_glibc_alone():
    f = _probe("system")
    assert f["inside"] > 6 * ROUND_PAGES / 2


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / MB


def test_leaving_the_block_returns_the_memory():
    base = _rss_mb()
    with malloc.reuse_freed_memory():
        x = torch.ones(256 * MB // 4)
        del x
        assert _rss_mb() > base + 200         # kept for reuse while inside
    assert _rss_mb() < base + 64              # malloc_trim handed it back


def test_bad_mode_is_refused(monkeypatch):
    monkeypatch.setenv("SELMATCH_MALLOC", "jemalloc")
    with pytest.raises(ValueError, match="SELMATCH_MALLOC='jemalloc'.*'reuse'.*'system'"):
        malloc.enabled()
