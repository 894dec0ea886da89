"""Evaluate a (selected or distilled) training set: train fresh networks, report test accuracy.

``evaluate(x, y, x_test, y_test, cfg, runs=n)`` trains ``n`` networks (seeds ``seed .. seed+n-1``) and
returns the mean, the sample std over runs (0 for a single run) and every run, overall
and per group of test images (e.g. the easy and hard halves).
"""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field

import torch

from . import cluster
from .data import ImageDataset
from .select import Selection
from .device import DeviceLike, resolve_device
from .train import TrainConfig, predict, train


@dataclass(frozen=True)
class EvalResult:
    mean: float                      # test accuracy in %, over runs
    std: float
    runs: list[float]
    groups: dict[str, dict] = field(default_factory=dict)   # name -> {"mean", "std", "runs"}
    config: dict = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        parts = [f"{self.mean:.2f} ± {self.std:.2f} % (n={len(self.runs)})"]
        parts += [f"{k}: {v['mean']:.2f} ± {v['std']:.2f}" for k, v in self.groups.items()]
        return "; ".join(parts)


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def accuracy(model, x_test: torch.Tensor, y_test: torch.Tensor,
             groups: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
    """Accuracy in % overall (key ``"all"``) and on each boolean mask of ``groups`` (on the model's device)."""
    correct = (predict(model, x_test).argmax(1) == y_test.cpu()).double()
    out = {"all": 100 * correct.mean().item()}
    for name, mask in (groups or {}).items():
        out[name] = 100 * correct[mask].mean().item() if mask.any() else float("nan")
    return out


def _one_run(r: int, x, y, x_test, y_test, cfg: TrainConfig, seed: int, num_classes, distilled, groups, device,
             progress: bool, runs: int) -> dict[str, float]:
    model = train(x, y, cfg, seed + r, num_classes=num_classes, distilled=distilled, progress=progress,
                  desc=f"eval run {r + 1}/{runs}", device=device)
    return accuracy(model, x_test, y_test, groups)


def evaluate(x: torch.Tensor, y: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor, cfg: TrainConfig,
             *, runs: int = 1, seed: int = 0, num_classes: int | None = None, distilled: torch.Tensor | None = None,
             groups: dict[str, torch.Tensor] | None = None, progress: bool = True,
             device: DeviceLike = "cpu") -> EvalResult:
    """Train ``runs`` fresh networks on ``(x, y)`` on ``device`` and test each on ``(x_test, y_test)``."""
    if runs < 1:
        raise ValueError(f"runs={runs} must be >= 1")
    resolve_device(device)             # a device this machine lacks fails here, before any task starts
    t0 = time.perf_counter()
    # run r trains with seed + r wherever it runs: as Ray tasks with SELMATCH_RAY (selmatch.cluster), else here
    per_run: list[dict[str, float]] = cluster.map(
        _one_run, range(runs), device=str(device), desc="evaluation runs", progress=progress and cluster.enabled(),
        shared=dict(x=x, y=y, x_test=x_test, y_test=y_test, cfg=cfg, seed=seed, num_classes=num_classes,
                    distilled=distilled, groups=groups, device=device, progress=progress, runs=runs))
    overall = [a["all"] for a in per_run]
    mean, std = _mean_std(overall)
    group_stats = {}
    for name in groups or {}:
        vals = [a[name] for a in per_run]
        m, s = _mean_std(vals)
        group_stats[name] = {"mean": m, "std": s, "runs": vals}
    return EvalResult(mean, std, overall, group_stats, {**asdict(cfg), "runs": runs, "seed": seed},
                      time.perf_counter() - t0)


def selection_set(ds: ImageDataset, sel: Selection, synthetic: torch.Tensor | None = None):
    """``(x, y, distilled)`` for a selection: D_select as real images, D_distill as ``synthetic``
    (normalised floats, in ``distill_idx`` order) or, without it, as their real initialisation."""
    x_sel = ds.normalize(ds.x_train[sel.select_idx])
    x_dis = ds.normalize(ds.x_train[sel.distill_idx]) if synthetic is None else synthetic.float()
    if len(x_dis) != len(sel.distill_idx):
        raise ValueError(f"synthetic has {len(x_dis)} images but the selection distills {len(sel.distill_idx)}")
    x = torch.cat([x_sel, x_dis])
    y = torch.cat([ds.y_train[sel.select_idx], ds.y_train[sel.distill_idx]])
    distilled = torch.cat([torch.zeros(len(x_sel), dtype=torch.bool), torch.ones(len(x_dis), dtype=torch.bool)])
    return x, y, distilled


def halves(hardness: torch.Tensor) -> dict[str, torch.Tensor]:
    """Split images into an ``easy`` and a ``hard`` half by hardness (stable: ties by index)."""
    order = torch.sort(hardness.double(), stable=True).indices
    easy = torch.zeros(len(hardness), dtype=torch.bool)
    easy[order[: len(hardness) // 2]] = True
    return {"easy": easy, "hard": ~easy}
