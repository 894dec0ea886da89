"""Expert trajectories: networks trained on the full training set, parameters saved after every epoch.

One file per expert, ``expert_0000.pt`` ..., holding the parameter names, their shapes and one float32
tensor ``[epochs + 1, P]`` (row 0 = the initialisation), written atomically and read back with
``torch.load(weights_only=True)``, which cannot execute code. ``config.json`` beside them records what
made them; a run into a folder with a different config is refused, and an interrupted run resumes at
the first expert without a file.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from .augment import AUGMENTATIONS
from .evaluate import accuracy
from .train import TrainConfig, new_model, train

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ExpertConfig:
    """How experts are trained. Defaults: the official buffer settings (FACTS §3)."""

    model: str = "convnet_bn"
    width: int | None = None
    depth: int | None = None
    num_experts: int = 100
    epochs: int = 100
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 256
    augmentation: str = "none"   # "dsa" as MTT does, "none" as the SelMatch buffer script effectively does
    max_per_class: int | None = None  # train on a class-balanced subset (smoke/cpu only); None = all images

    def __post_init__(self):
        if self.num_experts < 1:
            raise ValueError(f"num_experts={self.num_experts} must be >= 1")
        if self.augmentation not in AUGMENTATIONS:
            raise ValueError(f"augmentation={self.augmentation!r} is unknown; valid: {', '.join(AUGMENTATIONS)}")

    def train_config(self, device: str = "cpu") -> TrainConfig:
        """Constant learning rate (no schedule), as the official experts use."""
        return TrainConfig(model=self.model, width=self.width, depth=self.depth, epochs=self.epochs, lr=self.lr,
                           momentum=self.momentum, weight_decay=self.weight_decay, batch_size=self.batch_size,
                           augmentation=self.augmentation, min_lr_ratio=1.0, device=device)


@dataclass(frozen=True)
class Trajectory:
    names: list[str]
    shapes: list[list[int]]
    params: torch.Tensor        # float32 [epochs + 1, P]
    test_acc: list[float]       # after each epoch

    @property
    def epochs(self) -> int:
        return len(self.params) - 1


def expert_indices(y: torch.Tensor, max_per_class: int | None, seed: int, num_classes: int) -> torch.Tensor:
    """The training images the experts see: all of them (``max_per_class=None``), or a class-balanced
    random subset of ``max_per_class`` images per class, capped at the smallest class (TinyImageNet has
    500 per class, below the ``cpu`` preset's 1,000)."""
    if max_per_class is None:
        return torch.arange(len(y))
    from .select import random_subset

    smallest = int(torch.bincount(y, minlength=num_classes).min())
    return random_subset(y, min(max_per_class, smallest), seed, num_classes).select_idx

def flat_params(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).cpu().float() for p in model.parameters()])


def expert_path(folder: Path, k: int) -> Path:
    return Path(folder) / f"expert_{k:04d}.pt"


def save_trajectory(traj: Trajectory, path: Path, config: dict) -> None:
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save({"format": FORMAT_VERSION, "names": traj.names, "shapes": traj.shapes, "params": traj.params,
                "test_acc": traj.test_acc, "config": json.dumps(config)}, tmp)
    os.replace(tmp, path)


def load_trajectory(path: Path, mmap: bool = True) -> Trajectory:
    """Read one expert file; a missing or damaged file is an error naming it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"expert file {path} is missing; train experts with `selmatch experts --out {path.parent}`")
    try:
        blob = torch.load(path, weights_only=True, mmap=mmap)
        traj = Trajectory(list(blob["names"]), [list(s) for s in blob["shapes"]], blob["params"], list(blob["test_acc"]))
    except Exception as e:  # noqa: BLE001 -- any unreadable file is reported the same way
        raise ValueError(f"expert file {path} is corrupt or not an expert file ({type(e).__name__}: {e}); "
                         "delete it and rerun `selmatch experts --resume`") from e
    if traj.params.ndim != 2 or traj.params.shape[1] != sum(int(torch.Size(s).numel()) for s in traj.shapes):
        raise ValueError(f"expert file {path} is inconsistent: params {tuple(traj.params.shape)} vs shapes {traj.shapes}")
    return traj


def list_experts(folder: Path) -> list[Path]:
    paths = sorted(Path(folder).glob("expert_[0-9][0-9][0-9][0-9].pt"))
    if not paths:
        raise FileNotFoundError(f"no expert files (expert_0000.pt, ...) in {folder}; "
                                f"train them with `selmatch experts --out {folder}`")
    return paths


def train_expert(x, y, x_test, y_test, cfg: ExpertConfig, seed: int, num_classes: int, device: str = "cpu",
                 progress: bool = True, desc: str = "expert") -> Trajectory:
    tcfg = cfg.train_config(device)
    init = new_model(tcfg, x.shape[1], num_classes, x.shape[-1], seed)   # the same weights train() starts from
    rows, accs = [flat_params(init)], []
    bar = tqdm(total=cfg.epochs, desc=desc, disable=not progress, leave=False)

    def on_epoch(epoch, model):
        rows.append(flat_params(model))
        accs.append(accuracy(model, x_test, y_test, device=device)["all"])
        bar.update(1)
        bar.set_postfix(test_acc=f"{accs[-1]:.1f}%")

    model = train(x, y, tcfg, seed, num_classes=num_classes, on_epoch=on_epoch, progress=False)
    bar.close()
    names = [n for n, _ in model.named_parameters()]
    shapes = [list(p.shape) for _, p in model.named_parameters()]
    return Trajectory(names, shapes, torch.stack(rows), accs)


def train_experts(x, y, x_test, y_test, cfg: ExpertConfig, out: Path, *, seed: int = 0, num_classes: int,
                  device: str = "cpu", resume: bool = True, progress: bool = True, extra: dict | None = None) -> list[Path]:
    """Train ``cfg.num_experts`` experts into ``out`` (expert k uses seed ``seed + k``).

    With ``resume`` (default), experts whose files already exist are kept; the folder's recorded config
    must match. Without it, an existing non-empty folder is an error (nothing is overwritten)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"expert": asdict(cfg), "seed": seed, **(extra or {})}
    cfg_file = out / "config.json"
    done = sorted(out.glob("expert_[0-9][0-9][0-9][0-9].pt"))
    if cfg_file.exists():
        old = json.loads(cfg_file.read_text())
        same = {k: v for k, v in old.get("expert", {}).items() if k != "num_experts"} == \
               {k: v for k, v in record["expert"].items() if k != "num_experts"} and old.get("seed") == seed
        if done and not same:
            raise ValueError(f"{out} holds experts made with a different config ({cfg_file}); "
                             "use another --out folder or delete it")
        if done and not resume:
            raise ValueError(f"{out} already holds {len(done)} experts; pass --resume to continue or use another folder")
    cfg_file.write_text(json.dumps(record, indent=2) + "\n")
    paths = []
    for k in tqdm(range(cfg.num_experts), desc="experts", disable=not progress):
        path = expert_path(out, k)
        if path.exists():
            try:
                load_trajectory(path)
                paths.append(path)
                continue
            except ValueError:
                path.unlink()          # a damaged file from a crash is retrained, never trusted
        traj = train_expert(x, y, x_test, y_test, cfg, seed + k, num_classes, device, progress, f"expert {k}")
        save_trajectory(traj, path, record)
        paths.append(path)
    return paths
