"""Which device a computation runs on.

Every entry point that computes takes ``device`` (a name such as ``"cpu"``, ``"cuda"``, ``"cuda:1"``, or a
``torch.device``) and passes it down: nothing falls back to the CPU silently. :func:`resolve_device`
checks the name once, at the start, so a device this machine does not have fails before any work is
done, with one line that names it and what is available.

The device is not part of any result's cache key: the same configuration computes numbers from the same
distribution on every device (not bit-identical ones: kernels round differently). Results record the
device, the torch version and the switches that change rounding (:func:`provenance`).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

DeviceLike = str | torch.device


def available_devices() -> list[str]:
    """The device names this machine can run on."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names


def resolve_device(device: DeviceLike | None) -> torch.device:
    """``device`` as a ``torch.device``, or a ``ValueError`` naming it and the devices available here."""
    if device is None:
        return torch.device("cpu")
    if isinstance(device, torch.device):
        dev = device
    else:
        try:
            dev = torch.device(str(device))
        except (RuntimeError, ValueError):
            raise ValueError(f"device={device!r} is not a device name; available here: "
                             f"{', '.join(available_devices())}") from None
    if dev.type == "cpu":
        return torch.device("cpu")
    ok = (dev.type == "cuda" and torch.cuda.is_available() and (dev.index is None or dev.index < torch.cuda.device_count())) \
        or (dev.type == "mps" and "mps" in available_devices())
    if not ok:
        raise ValueError(f"device={str(device)!r} is not available on this machine; available: "
                         f"{', '.join(available_devices())}")
    return dev


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's parameters (the CPU for a model without any)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def compile_enabled() -> bool:
    """``SELMATCH_COMPILE=1`` trains through ``torch.compile`` (inductor): the same computation, fused
    into C++ kernels; on a 2-core CPU about 1.7x the images per second of eager mode for ConvNet (see
    the book's library page for every network) once compiled, for a one-off compilation of 15-60 s per
    process (cached on disk). Off by default: tests, CI and short runs would spend more on compiling
    than they save. Results are not bit-identical to eager mode (fused kernels round differently) but
    come from the same distribution, so they share the eager results' cache keys."""
    return os.environ.get("SELMATCH_COMPILE", "").lower() in ("1", "true", "yes")


def cpu_name() -> str:
    """The CPU model and the cores this process may use (``AMD EPYC, 2 cores``): CPUs differ in speed, so every
    recorded time says which one it was measured on."""
    import platform

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {cores} cores"


def provenance(device: DeviceLike | None) -> dict:
    """What a result records about where and how it was computed (never part of its key)."""
    dev = resolve_device(device)
    out = {"device": str(dev), "torch": torch.__version__,
           "compile": "1" if compile_enabled() else None, "cpu": cpu_name()}
    if dev.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(dev)
    return out
