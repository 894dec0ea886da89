"""Batched, differentiable augmentation with explicit randomness.

Every function takes a float batch ``x`` of shape ``[N, C, H, W]`` and a ``torch.Generator`` and works
on the whole batch at once; gradients flow to ``x`` (distillation back-propagates through them).

* :func:`dsa` -- Differentiable Siamese Augmentation (Zhao & Bilen, 2021) with the six families and
  ranges of the official code (its `ParamDiffAug`). ``mode="single"`` draws one family for the whole call (the
  official default); ``mode="sample"`` draws a family per image (what the official combined
  evaluation effectively does, because it augments distilled images one at a time).
* :func:`simple` -- random crop with 4-pixel zero padding plus horizontal flip.
* :func:`combined` -- DSA (per-image family) where ``distilled`` is True, simple elsewhere.
* :func:`augment` -- dispatch on ``"none" | "simple" | "dsa" | "combined"``.

Random draws are made on the CPU from the generator and moved to ``x``'s device, so a seed gives
the same augmentation on every device.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

DSA_FAMILIES = ("color", "crop", "cutout", "flip", "scale", "rotate")
AUGMENTATIONS = ("none", "simple", "dsa", "combined")


@dataclass(frozen=True)
class DSAParams:
    """The official DSA ranges."""

    scale: float = 1.2         # per-axis scale factor in [1/scale, scale]
    rotate_deg: float = 15.0   # rotation angle in [-rotate_deg, rotate_deg]
    crop: float = 0.125        # translation up to crop * size pixels, zero fill
    cutout: float = 0.5        # a zeroed square of side cutout * size
    brightness: float = 1.0    # add U(-0.5, 0.5) * brightness
    saturation: float = 2.0    # scale the deviation from the channel mean by U(0, saturation)
    contrast: float = 0.5      # scale the deviation from the image mean by U(1 - contrast, 1 + contrast)


def _rand(g: torch.Generator, n: int, like: torch.Tensor) -> torch.Tensor:
    return torch.rand(n, generator=g).to(device=like.device, dtype=like.dtype)


def _randint(g: torch.Generator, low: int, high: int, n: int, like: torch.Tensor) -> torch.Tensor:
    return torch.randint(low, high, (n,), generator=g).to(like.device)


def translate(x: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """Shift image i by (dx[i], dy[i]) whole pixels (right/down positive), filling with zeros."""
    n, c, h, w = x.shape
    p = int(max(dx.abs().max().item(), dy.abs().max().item(), 0)) if n else 0
    padded = F.pad(x, (p, p, p, p))
    rows = torch.arange(h, device=x.device)[None, :] + p - dy[:, None]   # [N, H] source rows
    cols = torch.arange(w, device=x.device)[None, :] + p - dx[:, None]   # [N, W] source cols
    idx = torch.arange(n, device=x.device)[:, None, None]
    # the gather leaves the result channels-last; the networks are fastest on (and the unroll's norms assume) the
    # default layout: a channels-last batch made a crop step cost about twice as much (group norm backward, copies)
    return padded.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def flip(x: torch.Tensor, g: torch.Generator, p: DSAParams = DSAParams()) -> torch.Tensor:
    mask = (_rand(g, len(x), x) < 0.5).view(-1, 1, 1, 1)
    return torch.where(mask, x.flip(3), x)


def color(x: torch.Tensor, g: torch.Generator, p: DSAParams = DSAParams()) -> torch.Tensor:
    n = len(x)
    x = x + ((_rand(g, n, x) - 0.5) * p.brightness).view(-1, 1, 1, 1)
    m = x.mean(dim=1, keepdim=True)
    x = (x - m) * (_rand(g, n, x) * p.saturation).view(-1, 1, 1, 1) + m
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - m) * (_rand(g, n, x) * 2 * p.contrast + 1 - p.contrast).view(-1, 1, 1, 1) + m


def crop(x: torch.Tensor, g: torch.Generator, p: DSAParams = DSAParams()) -> torch.Tensor:
    n, _, h, w = x.shape
    sy, sx = int(h * p.crop + 0.5), int(w * p.crop + 0.5)
    return translate(x, _randint(g, -sx, sx + 1, n, x), _randint(g, -sy, sy + 1, n, x))


def cutout(x: torch.Tensor, g: torch.Generator, p: DSAParams = DSAParams()) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * p.cutout + 0.5), int(w * p.cutout + 0.5)
    oy = _randint(g, 0, h + (1 - ch % 2), n, x) - ch // 2   # top edge of the square
    ox = _randint(g, 0, w + (1 - cw % 2), n, x) - cw // 2
    r = torch.arange(h, device=x.device)[None, :]
    c = torch.arange(w, device=x.device)[None, :]
    in_r = (r >= oy[:, None]) & (r < oy[:, None] + ch)
    in_c = (c >= ox[:, None]) & (c < ox[:, None] + cw)
    keep = ~(in_r[:, :, None] & in_c[:, None, :])
    return x * keep[:, None].to(x.dtype)


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, align_corners=True)


def scale(x: torch.Tensor, g: torch.Generator, p: DSAParams = DSAParams()) -> torch.Tensor:
    n = len(x)
    lo = 1 / p.scale
    sx, sy = _rand(g, n, x) * (p.scale - lo) + lo, _rand(g, n, x) * (p.scale - lo) + lo
    zero = torch.zeros_like(sx)
    theta = torch.stack([torch.stack([sx, zero, zero], 1), torch.stack([zero, sy, zero], 1)], 1)
    return _affine(x, theta)


def rotate(x: torch.Tensor, g: torch.Generator, p: DSAParams = DSAParams()) -> torch.Tensor:
    n = len(x)
    a = (_rand(g, n, x) - 0.5) * 2 * p.rotate_deg * math.pi / 180
    zero = torch.zeros_like(a)
    theta = torch.stack([torch.stack([a.cos(), a.sin(), zero], 1), torch.stack([-a.sin(), a.cos(), zero], 1)], 1)
    return _affine(x, theta)


OPS = {"color": color, "crop": crop, "cutout": cutout, "flip": flip, "scale": scale, "rotate": rotate}


def _per_sample(x: torch.Tensor, choice: torch.Tensor, fns: list, g: torch.Generator) -> torch.Tensor:
    """Apply ``fns[choice[i]]`` to image i, one batched call per function; keeps the input order. The
    choices are grouped on the CPU, where they were drawn, so a GPU batch costs no host round trip."""
    choice = choice.cpu()
    parts, where = [], []
    for k, fn in enumerate(fns):
        idx = (choice == k).nonzero().flatten()
        if len(idx):
            parts.append(fn(x[idx], g))
            where.append(idx)
    if not parts:
        return x
    order = torch.cat(where)
    return torch.cat(parts)[torch.argsort(order)]


def dsa(x: torch.Tensor, g: torch.Generator, mode: str = "single", families: tuple[str, ...] = DSA_FAMILIES,
        params: DSAParams = DSAParams()) -> torch.Tensor:
    """DSA with one family per call (``single``) or per image (``sample``)."""
    unknown = [f for f in families if f not in OPS]
    if unknown or not families:
        raise ValueError(f"families={families!r} must be a non-empty subset of {DSA_FAMILIES}")
    fns = [lambda v, gen, f=OPS[f]: f(v, gen, params) for f in families]
    if mode == "single":
        return fns[int(torch.randint(len(fns), (1,), generator=g))](x, g)
    if mode == "sample":
        return _per_sample(x, torch.randint(len(fns), (len(x),), generator=g), fns, g)
    raise ValueError(f"mode={mode!r} is unknown; valid: single, sample")


def simple(x: torch.Tensor, g: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop after ``pad`` pixels of zero padding, then a horizontal flip with p = 0.5."""
    n = len(x)
    x = translate(x, _randint(g, -pad, pad + 1, n, x), _randint(g, -pad, pad + 1, n, x))
    return flip(x, g)


def combined(x: torch.Tensor, g: torch.Generator, distilled: torch.Tensor) -> torch.Tensor:
    """DSA (a family per image) on ``distilled`` images, simple augmentation on the rest."""
    choice = (~distilled.to(torch.bool)).long()                 # 0 = distilled, 1 = selected
    return _per_sample(x, choice, [lambda v, gen: dsa(v, gen, mode="sample"), simple], g)


def augment(x: torch.Tensor, kind: str, g: torch.Generator, distilled: torch.Tensor | None = None) -> torch.Tensor:
    """Dispatch on ``kind``; ``distilled`` (bool ``[N]``) is needed by ``combined`` only."""
    if kind == "none":
        return x
    if kind == "simple":
        return simple(x, g)
    if kind == "dsa":
        return dsa(x, g)
    if kind == "combined":
        if distilled is None:
            distilled = torch.zeros(len(x), dtype=torch.bool)
        return combined(x, g, distilled)
    raise ValueError(f"augmentation={kind!r} is unknown; valid: {', '.join(AUGMENTATIONS)}")
