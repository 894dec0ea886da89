"""Expert trajectories: networks trained on the full training set, parameters saved after every epoch.

One file per expert, ``expert_0000.pt`` ..., holding the parameter names, their shapes and one float32
tensor ``[epochs + 1, P]`` (row 0 = the initialisation), written atomically and read back with
``torch.load(weights_only=True)``, which cannot execute code. ``config.json`` beside them records what
made them; a run into a folder with a different config is refused, and an interrupted run resumes at
the first expert without a file.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from . import cluster
from .artifacts import (EXPERT_FIELDS, ArtifactError, Trajectory, atomic_write, differences, expert_path, foreign_expert,
                        load_trajectory, save_trajectory)
from .augment import AUGMENTATIONS
from .device import DeviceLike, resolve_device
from .evaluate import accuracy
from .student import ParamLayout, flatten
from .train import TrainConfig, new_model, train


@dataclass(frozen=True)
class ExpertConfig:
    """How experts are trained. Defaults: the official buffer settings (the book: *The paper*, official settings)."""

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
        for name in ("num_experts", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if self.max_per_class is not None and self.max_per_class < 1:
            raise ValueError(f"max_per_class={self.max_per_class} must be >= 1 (or None for every image)")
        self.train_config()      # the training recipe's own checks (lr, momentum, ...)
        if self.augmentation not in AUGMENTATIONS:
            raise ValueError(f"augmentation={self.augmentation!r} is unknown; valid: {', '.join(AUGMENTATIONS)}")

    def train_config(self) -> TrainConfig:
        """Constant learning rate (no schedule), as the official experts use."""
        return TrainConfig(model=self.model, width=self.width, depth=self.depth, epochs=self.epochs, lr=self.lr,
                           momentum=self.momentum, weight_decay=self.weight_decay, batch_size=self.batch_size,
                           augmentation=self.augmentation, min_lr_ratio=1.0)


def expert_indices(y: torch.Tensor, max_per_class: int | None, seed: int, num_classes: int) -> torch.Tensor:
    """The training images the experts see: all of them (``max_per_class=None``), or a class-balanced
    random subset of ``max_per_class`` images per class, capped at the smallest class (TinyImageNet has
    500 per class, below the ``cpu`` preset's 1,000)."""
    if max_per_class is None:
        return torch.arange(len(y))
    from .select import random_subset

    smallest = int(torch.bincount(y, minlength=num_classes).min())
    return random_subset(y, min(max_per_class, smallest), seed, num_classes).select_idx

def train_expert(x, y, x_test, y_test, cfg: ExpertConfig, seed: int, num_classes: int, device: DeviceLike = "cpu",
                 progress: bool = True, desc: str = "expert") -> Trajectory:
    """One expert: ``cfg.epochs`` epochs on ``(x, y)`` on ``device``, parameters kept after every epoch."""
    tcfg = cfg.train_config()
    init = new_model(tcfg, x.shape[1], num_classes, x.shape[-1], seed)   # the same weights train() starts from
    rows, accs = [flatten(init)], []
    bar = tqdm(total=cfg.epochs, desc=desc, disable=not progress, leave=False)

    def on_epoch(epoch, model):
        rows.append(flatten(model))
        accs.append(accuracy(model, x_test, y_test)["all"])
        bar.update(1)
        bar.set_postfix(test_acc=f"{accs[-1]:.1f}%")

    model = train(x, y, tcfg, seed, num_classes=num_classes, on_epoch=on_epoch, progress=False, device=device)
    bar.close()
    layout = ParamLayout.of(model)
    return Trajectory(list(layout.names), [list(s) for s in layout.shapes], torch.stack(rows), accs)


def _check_folder(out: Path, record: dict, resume: bool, force: bool) -> None:
    """Refuse a folder whose experts were made otherwise (or unknown), or that is finished work without
    ``resume``; with ``force``, empty it instead."""
    done = sorted(out.glob("expert_[0-9][0-9][0-9][0-9].pt"))
    cfg_file = out / "config.json"
    if force:
        for f in [*done, cfg_file]:
            f.unlink(missing_ok=True)
        return
    if not done:
        return
    if not cfg_file.exists():
        raise ValueError(f"{out} holds {len(done)} expert files but no config.json, so what made them is unknown; "
                         "use another output folder, or --force to replace them")
    old = json.loads(cfg_file.read_text())
    diff = differences({k: old.get(k) for k in _COMPARED}, {k: record.get(k) for k in _COMPARED})
    diff = [d for d in diff if not d.startswith("expert.num_experts:")]
    if diff:
        raise ValueError(f"{out} holds experts made with a different configuration ({'; '.join(diff)}); use another "
                         "output folder, or --force to replace them")
    if not resume:
        raise ValueError(f"{out} already holds {len(done)} experts; pass --resume to continue (train up to "
                         f"{record['expert']['num_experts']}), --force to replace them, or use another folder")


_COMPARED = EXPERT_FIELDS      # what must match for experts to be continued


def train_experts(x, y, x_test, y_test, cfg: ExpertConfig, out: Path, *, seed: int = 0, num_classes: int,
                  device: DeviceLike = "cpu", resume: bool = True, force: bool = False, progress: bool = True,
                  identity: dict | None = None, extra: dict | None = None) -> list[Path]:
    """Train ``cfg.num_experts`` experts into ``out`` (expert k uses seed ``seed + k``).

    ``config.json`` records the expert config, the seed and ``identity`` (which data the experts saw: the
    pipeline passes the dataset's name and fingerprint), plus ``extra`` (recorded, not compared). With
    ``resume`` (default), experts whose files exist are kept if all of that matches, field by field; without
    it an existing non-empty folder is refused; ``force`` replaces what the folder holds. A damaged expert
    file (a crash while writing) is retrained, with a warning."""
    resolve_device(device)             # a device this machine lacks fails before any work
    out = Path(out)
    record = {"expert": asdict(cfg), "seed": seed, "identity": identity or {}, **(extra or {})}
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    _check_folder(out, record, resume, force)
    if not (out / "config.json").exists():     # a resumed folder keeps the record of the run that began it
        atomic_write(out / "config.json", lambda p: p.write_text(json.dumps(record, indent=2) + "\n"))
    missing = []
    for k in range(cfg.num_experts):
        path = expert_path(out, k)
        if path.exists():
            try:
                traj = load_trajectory(path)
            except ArtifactError as e:
                warnings.warn(f"{e}; training expert {k} again", stacklevel=2)
                path.unlink()          # a damaged file from a crash is retrained, never trusted
            else:
                why = foreign_expert(traj, record, path)
                if why:
                    raise ValueError(f"{why}; move it aside (it is not retrained over), or --force to replace the folder")
                continue
        missing.append(k)
    if cluster.enabled():              # each expert a task (selmatch.cluster); each writes its own file
        cluster.map(_train_and_save, missing, device=str(device), desc="experts", progress=progress,
                    shared=dict(x=x, y=y, x_test=x_test, y_test=y_test, cfg=cfg, seed=seed, num_classes=num_classes,
                                device=device, record=record, out=out))
    else:
        for k in tqdm(missing, desc="experts", disable=not progress):
            _train_and_save(k, x, y, x_test, y_test, cfg, seed, num_classes, device, record, out, progress)
    return [expert_path(out, k) for k in range(cfg.num_experts)]


def _train_and_save(k: int, x, y, x_test, y_test, cfg: ExpertConfig, seed: int, num_classes: int, device, record: dict,
                    out: Path, progress: bool = False) -> Path:
    """Expert ``k`` (seed ``seed + k``), written atomically to its file."""
    traj = train_expert(x, y, x_test, y_test, cfg, seed + k, num_classes, device, progress, f"expert {k}")
    return save_trajectory(traj, expert_path(out, k), record)
