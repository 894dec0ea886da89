"""Coverage of the real data by a synthetic set, in a network's feature space (the book: *Method*).

radius ``r`` = mean distance from each real training feature to its nearest *other* real feature;
coverage = fraction of real samples with some synthetic sample within ``r``, overall and per group.
Distances are computed in chunks, so 50,000 x 10,000 needs a few hundred MB, not 2 GB at once.
"""
from __future__ import annotations

import torch
from torch import nn

from .device import DeviceLike, model_device, resolve_device


@torch.no_grad()
def features(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Penultimate-layer features (``model.embed``, on the model's device) of ``x``, float32 ``[N, D]`` on the CPU."""
    model.eval()
    device = model_device(model)
    return torch.cat([model.embed(x[i:i + batch_size].to(device)).float().cpu()
                      for i in range(0, len(x), batch_size)])


def nearest_distance(queries: torch.Tensor, points: torch.Tensor, *, exclude_self: bool = False,
                     chunk: int = 2048, device: DeviceLike = "cpu") -> torch.Tensor:
    """Distance from each query to its nearest point, float64 ``[Q]`` on the CPU, computed on ``device``.
    With ``exclude_self``, ``queries`` and ``points`` are the same set and each row ignores its own column."""
    if queries.ndim != 2 or points.ndim != 2 or queries.shape[1] != points.shape[1]:
        raise ValueError(f"features must be [N, D] with equal D, got {tuple(queries.shape)} and {tuple(points.shape)}")
    if len(points) - int(exclude_self) < 1:
        raise ValueError("need at least one point to measure a nearest distance")
    device = resolve_device(device)
    q64, p64 = queries.to(device, torch.float64), points.to(device, torch.float64)
    out = torch.empty(len(queries), dtype=torch.float64, device=device)
    for i in range(0, len(queries), chunk):
        d = torch.cdist(q64[i:i + chunk], p64)
        if exclude_self:
            rows = torch.arange(d.shape[0], device=device)
            d[rows, rows + i] = float("inf")
        out[i:i + chunk] = d.min(1).values
    return out.cpu()


def coverage_radius(real: torch.Tensor, chunk: int = 2048, device: DeviceLike = "cpu") -> float:
    """Mean nearest-neighbour distance among the real features (self excluded)."""
    return nearest_distance(real, real, exclude_self=True, chunk=chunk, device=device).mean().item()


def coverage(real: torch.Tensor, synthetic: torch.Tensor, radius: float | None = None,
             groups: dict[str, torch.Tensor] | None = None, chunk: int = 2048,
             device: DeviceLike = "cpu") -> dict[str, float]:
    """Fraction of ``real`` within ``radius`` of some ``synthetic`` feature (``"all"`` and per group); the
    distances are computed on ``device``.

    ``radius`` defaults to :func:`coverage_radius` of ``real``; it is returned under ``"radius"``."""
    r = coverage_radius(real, chunk, device) if radius is None else float(radius)
    covered = nearest_distance(real, synthetic, chunk=chunk, device=device) <= r
    out = {"radius": r, "all": covered.double().mean().item()}
    for name, mask in (groups or {}).items():
        if mask.shape != covered.shape:
            raise ValueError(f"group {name!r} has {len(mask)} entries for {len(covered)} real samples")
        out[name] = covered[mask].double().mean().item() if mask.any() else float("nan")
    return out
