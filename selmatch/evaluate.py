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

from .data import ImageDataset
from .select import Selection
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


def accuracy(model, x_test: torch.Tensor, y_test: torch.Tensor, groups: dict[str, torch.Tensor] | None = None,
             device: str = "cpu") -> dict[str, float]:
    """Accuracy in % overall (key ``"all"``) and on each boolean mask of ``groups``."""
    correct = (predict(model, x_test, device=device).argmax(1) == y_test).double()
    out = {"all": 100 * correct.mean().item()}
    for name, mask in (groups or {}).items():
        out[name] = 100 * correct[mask].mean().item() if mask.any() else float("nan")
    return out


def evaluate(x: torch.Tensor, y: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor, cfg: TrainConfig,
             *, runs: int = 1, seed: int = 0, num_classes: int | None = None, distilled: torch.Tensor | None = None,
             groups: dict[str, torch.Tensor] | None = None, progress: bool = True) -> EvalResult:
    """Train ``runs`` fresh networks on ``(x, y)`` and test each on ``(x_test, y_test)``."""
    if runs < 1:
        raise ValueError(f"runs={runs} must be >= 1")
    t0 = time.perf_counter()
    per_run: list[dict[str, float]] = []
    for r in range(runs):
        model = train(x, y, cfg, seed + r, num_classes=num_classes, distilled=distilled, progress=progress,
                      desc=f"eval run {r + 1}/{runs}")
        per_run.append(accuracy(model, x_test, y_test, groups, cfg.device))
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


def load_training_set(ds: ImageDataset, path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict]:
    """``(x, y, distilled, params)`` from a selection file (``selmatch select``) or a synthetic set
    (``selmatch distill``: ``images``, ``labels``, ``is_distilled``)."""
    import json

    import numpy as np

    from .formats import _READ_ERRORS, DataFormatError
    from .select import load_selection

    try:
        with np.load(path) as z:
            files = set(z.files)
            if {"images", "labels", "is_distilled"} <= files:
                x, y = torch.from_numpy(z["images"]).float(), torch.from_numpy(z["labels"]).long()
                distilled = torch.from_numpy(z["is_distilled"]).bool()
                params = json.loads(str(z["config"])) if "config" in files else {}
            elif "select_idx" not in files:
                raise DataFormatError(f"{path}: neither a selection (select_idx) nor a synthetic set (images, labels, "
                                      f"is_distilled); has {sorted(files)}")
    except _READ_ERRORS as e:
        if isinstance(e, DataFormatError):
            raise
        raise DataFormatError(f"{path}: unreadable ({type(e).__name__}: {e})") from e
    if "select_idx" in files and "images" not in files:
        sel = load_selection(path)
        x, y, distilled = selection_set(ds, sel)
        return x, y, distilled, sel.params
    if tuple(x.shape[1:]) != ds.image_shape or len(y) != len(x) or len(distilled) != len(x):
        raise DataFormatError(f"{path}: images {tuple(x.shape)} / labels {len(y)} / is_distilled {len(distilled)} "
                              f"do not fit {ds.name} images of shape {ds.image_shape}")
    if len(y) and (y.min() < 0 or y.max() >= ds.num_classes):
        raise DataFormatError(f"{path}: labels outside [0, {ds.num_classes - 1}]")
    return x, y, distilled, params


def evaluate_on(ds: ImageDataset, x: torch.Tensor, y: torch.Tensor, distilled: torch.Tensor, cfg: TrainConfig, *,
                runs: int = 1, seed: int = 0, test_hardness: torch.Tensor | None = None,
                progress: bool = True) -> EvalResult:
    """Evaluate the training set ``(x, y, distilled)`` on ``ds``'s test set (easy/hard halves if given)."""
    groups = halves(test_hardness) if test_hardness is not None else None
    return evaluate(x, y, ds.normalize(ds.x_test), ds.y_test, cfg, runs=runs, seed=seed,
                    num_classes=ds.num_classes, distilled=distilled, groups=groups, progress=progress)


def evaluate_selection(ds: ImageDataset, sel: Selection, cfg: TrainConfig, *, runs: int = 1, seed: int = 0,
                       synthetic: torch.Tensor | None = None, test_hardness: torch.Tensor | None = None,
                       progress: bool = True) -> EvalResult:
    """Evaluate a selection (optionally with distilled images) on ``ds``'s test set."""
    x, y, distilled = selection_set(ds, sel, synthetic)
    return evaluate_on(ds, x, y, distilled, cfg, runs=runs, seed=seed, test_hardness=test_hardness,
                       progress=progress)
