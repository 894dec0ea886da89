"""One training loop for every network trained from scratch: evaluation runs and score recording.

Data are tensors already in memory (normalised floats); a minibatch is ``x[idx]`` plus batched
augmentation. SGD with momentum, weight decay, and a per-step cosine schedule from ``lr`` down to
``min_lr_ratio * lr``. Deterministic for a seed, without touching the global RNG of the caller.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .augment import AUGMENTATIONS, augment
from .device import DeviceLike, compile_enabled, model_device, resolve_device
from .fast.malloc import reuse_freed_memory
from .networks import MODELS, build_model


@dataclass(frozen=True)
class TrainConfig:
    """How to train a fresh network. Defaults are the paper's evaluation settings (the book: *The paper*, official settings)."""

    model: str = "resnet18_bn"      # registry name, see selmatch.networks.MODELS
    width: int | None = None        # None = the model's paper width
    depth: int | None = None        # ConvNet only; None = the model's paper depth
    epochs: int = 500
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128
    augmentation: str = "dsa"       # none | simple | dsa | combined
    min_lr_ratio: float = 0.01      # cosine schedule ends at min_lr_ratio * lr

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"model={self.model!r} is unknown; valid: {', '.join(MODELS)}")
        if self.augmentation not in AUGMENTATIONS:
            raise ValueError(f"augmentation={self.augmentation!r} is unknown; valid: {', '.join(AUGMENTATIONS)}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        for name in ("lr", "momentum", "weight_decay", "min_lr_ratio"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0 or (name == "lr" and v == 0):
                raise ValueError(f"{name}={v} must be a finite number {'> 0' if name == 'lr' else '>= 0'}")

    def with_(self, **changes) -> "TrainConfig":
        return replace(self, **changes)


def new_model(cfg: TrainConfig, channels: int, num_classes: int, image_size: int, seed: int,
              device: DeviceLike = "cpu") -> nn.Module:
    """Build ``cfg.model`` with weights drawn from ``seed`` on the CPU (the same weights on every device; the
    caller's global RNG is restored), then move it to ``device``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(cfg.model, channels, num_classes, image_size, width=cfg.width, depth=cfg.depth)
    return model.to(resolve_device(device))


def cosine_lr(step: int, total: int, lr: float, min_ratio: float) -> float:
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * step / max(total, 1))))


def _training_forward(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    # dynamic=True: one graph, general in the batch size, from the first step. By default the first graph is
    # specialised to the first batch's shape and a generic one replaces it at the first other shape, so which
    # kernels a run used depended on what the process had compiled before it: the same set and seed gave two
    # different first runs on two pages (issue: reproducible evaluation)
    return torch.compile(model, dynamic=True) if compile_enabled() else model


BatchHook = Callable[[int, torch.Tensor, torch.Tensor], None]     # (epoch, indices, logits)
EpochHook = Callable[[int, nn.Module], None]                      # (epoch, model)


def train(x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, seed: int, *, num_classes: int | None = None,
          distilled: torch.Tensor | None = None, on_batch: BatchHook | None = None,
          on_epoch: EpochHook | None = None, progress: bool = True, desc: str = "train",
          device: DeviceLike = "cpu") -> nn.Module:
    """Train a fresh ``cfg.model`` on ``(x, y)`` on ``device`` and return it in eval mode.

    The data are moved to ``device`` once; minibatch indices and augmentation draws come from a CPU
    generator (the same draws on every device), so nothing is read back to the host per step.

    Args:
        x: normalised float images ``[N, C, H, W]``; y: int64 labels ``[N]``.
        distilled: bool ``[N]``, which images are distilled (used by ``combined`` augmentation).
        on_batch: called with the (epoch, minibatch indices, logits) of every training step.
        on_epoch: called with (epoch, model) after every epoch (model in eval mode during the call).
    """
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x has {len(x)} images but y has {len(y)} labels (need the same, > 0)")
    num_classes = num_classes or int(y.max()) + 1
    device = resolve_device(device)
    model = new_model(cfg, x.shape[1], num_classes, x.shape[-1], seed, device)
    layout = torch.channels_last if getattr(model, "channels_last", False) and not compile_enabled() else None
    if layout is not None:
        model = model.to(memory_format=layout)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    g = torch.Generator().manual_seed(seed + 1)
    x, y = x.to(device), y.to(device)
    if distilled is not None:
        distilled = distilled.to(torch.bool)
    steps_per_epoch = math.ceil(len(x) / cfg.batch_size)
    total, step = cfg.epochs * steps_per_epoch, 0
    forward = _training_forward(model)
    with reuse_freed_memory():       # training reuses freed activations (selmatch.fast.malloc)
        for epoch in tqdm(range(cfg.epochs), desc=desc, disable=not progress, leave=False):
            model.train()
            perm = torch.randperm(len(x), generator=g)
            for b in range(steps_per_epoch):
                idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
                if len(idx) < 2 and len(x) > 1:   # a 1-image batch breaks BatchNorm; fold it away
                    continue
                xb = augment(x[idx], cfg.augmentation, g, None if distilled is None else distilled[idx])
                if layout is not None:
                    xb = xb.contiguous(memory_format=layout)
                logits = forward(xb)
                loss = F.cross_entropy(logits, y[idx])
                for group in opt.param_groups:
                    group["lr"] = cosine_lr(step, total, cfg.lr, cfg.min_lr_ratio)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                if on_batch is not None:
                    on_batch(epoch, idx, logits.detach())
            if on_epoch is not None:
                model.eval()
                on_epoch(epoch, model)
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Logits of ``model`` (in eval mode, on its own device) on ``x``, in chunks; returned on the CPU."""
    model.eval()
    device = model_device(model)
    return torch.cat([model(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])
