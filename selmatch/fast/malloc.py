"""Reuse freed memory instead of handing it back to the kernel while a model trains (glibc only).

PyTorch's CPU tensors come from ``malloc``. glibc serves every request above its mmap threshold (at
most 32 MB) with a fresh ``mmap`` and returns it with ``munmap`` when the tensor dies, so the next
training step pays again for the kernel to fault in and zero every 4 KB page of its activations. On
this project's 2-core machine that is several million page faults per epoch: ConvNet-128 trained
eagerly at batch 128 spends about a third of its time there (``python -m benchmarks.workloads train
--malloc system`` against the default).

:func:`reuse_freed_memory` switches glibc to its heap for the duration of a training run (``selmatch.train``)
or of a distillation's loop (``selmatch.distill``: 1.4x faster per unrolled step for ConvNet-128 at
syn_steps 10-20, for 0.05-0.45 GB more peak memory)
(``M_MMAP_MAX=0``) and stops it trimming the heap top (``M_TRIM_THRESHOLD``), so freed activations are
reused by the next step. On exit it restores both settings and calls ``malloc_trim(0)``, which returns
every free page to the kernel: the process keeps no more memory afterwards than it did before.

The arithmetic is unchanged (same tensors, same kernels), so results and cache keys are unaffected.
``SELMATCH_MALLOC=system`` turns it off; on other C libraries and systems it does nothing.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
from typing import Iterator

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_DEFAULT_TRIM, _DEFAULT_MMAP_MAX = 128 * 1024, 65536      # glibc's defaults
_KEEP = 2**31 - 1
_depth = 0


@functools.lru_cache(maxsize=1)
def _glibc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.gnu_get_libc_version                  # glibc, not musl
        return libc
    except (OSError, AttributeError):
        return None


def enabled() -> bool:
    """Whether :func:`reuse_freed_memory` changes anything here (glibc, and not ``SELMATCH_MALLOC=system``)."""
    mode = os.environ.get("SELMATCH_MALLOC", "reuse").lower()
    if mode not in ("reuse", "system"):
        raise ValueError(f"SELMATCH_MALLOC={mode!r}: expected 'reuse' (default) or 'system'")
    return mode == "reuse" and _glibc() is not None


@contextlib.contextmanager
def reuse_freed_memory() -> Iterator[None]:
    """Within the block, glibc keeps freed memory for reuse; on leaving it, free memory goes back to the
    kernel. Nested uses act once (the outermost)."""
    global _depth
    libc = _glibc() if _depth == 0 and enabled() else None
    _depth += 1
    if libc is not None:
        libc.mallopt(_M_MMAP_MAX, 0)
        libc.mallopt(_M_TRIM_THRESHOLD, _KEEP)
    try:
        yield
    finally:
        _depth -= 1
        if libc is not None:
            libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
            libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM)
            libc.malloc_trim(0)
