"""The paper's pipeline on a loaded dataset, one function per step, shared by the command line and the
book's cached units (:mod:`selmatch.companion.units`), so a number from ``selmatch evaluate`` is the book's
number for the same set.

    sel = initial_selection(ds, init="window", ipc=250, alpha=0.6, beta=0.5, hardness=load_scores(ds, "cscore"))
    experts = expert_trajectories(ds, setting.expert, "runs/experts", device="cuda")
    res = distill_selection(ds, sel, experts, setting, device="cuda")
    acc = evaluate_set(ds, res.images, res.labels, res.is_distilled, get_profile("paper"), augmentation="combined")

The evaluation protocol (:func:`evaluate_set`): train ``runs`` fresh networks (seeds ``seed``, ``seed + 1``,
...) with the profile's evaluation recipe, test them on the profile's test images, split into a
*validation half* (alternate images of each class: used to choose β, α, ...) and a *test half* (reported);
``mean``/``std`` are on the test half, ``val`` on the validation half, and ``easy``/``hard`` split the
test half by test-image hardness when given.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .artifacts import SynSet, atomic_write, config_key, read_training_file
from .coverage import coverage, features
from .data import ImageDataset
from .device import DeviceLike, model_device, resolve_device
from .difficulty import DifficultyRecord, record_difficulty
from .distill import DistillResult, distill
from .evaluate import evaluate, halves, selection_set
from .experts import ExpertConfig, expert_indices, train_experts
from .formats import DataFormatError
from .select import Selection, random_subset, sliding_window
from .settings import Preset, Profile
from .train import TrainConfig, new_model, train

TEST_SAMPLE_SEED = 12345   # the class-balanced test sample of profiles with ``test_subset``
REAL_SAMPLE_OFFSET = 777   # the real images coverage is measured on are drawn with seed + this
INITS = ("window", "random")


def data_identity(ds: ImageDataset) -> dict:
    """Which data a resumable artifact was made from: compared field by field before continuing it."""
    return {"dataset": ds.name, "n_train": len(ds.y_train), "fingerprint": ds.fingerprint[:16]}


# ----------------------------------------------------------------------------- selection

def initial_selection(ds: ImageDataset, *, init: str, ipc: int, alpha: float, beta: float = 0.0,
                      hardness: torch.Tensor | None = None, start_mode: str = "fraction", seed: int = 0) -> Selection:
    """SelMatch's initialisation (``init="window"``: the sliding window over ``hardness``) or a random
    class-balanced subset (``init="random"``; with ``alpha=1`` MTT's initialisation)."""
    if init == "random":
        return random_subset(ds.y_train, ipc, seed, ds.num_classes, alpha=alpha)
    if init != "window":
        raise ValueError(f"init={init!r} is unknown; valid: {', '.join(INITS)}")
    if hardness is None:
        raise ValueError("init='window' needs the hardness of every training image (load_scores)")
    return sliding_window(hardness, ds.y_train, ipc, beta, alpha, start_mode, ds.num_classes)


def training_set(ds: ImageDataset, path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict]:
    """``(x, y, distilled, params)`` from a selection file or a synthetic set, checked against ``ds``: the
    dataset it was made for, indices inside the training set, labels inside the classes, image shape."""
    found = read_training_file(path)
    meta = found.config if isinstance(found, SynSet) else found.params
    made_for = meta.get("dataset")
    if made_for is not None and made_for != ds.name:
        raise DataFormatError(f"{path} was made for dataset {made_for!r}, not {ds.name!r}")
    if not isinstance(found, SynSet):
        idx = found.indices
        if not len(idx):
            raise DataFormatError(f"{path}: the selection is empty")
        if int(idx.min()) < 0 or int(idx.max()) >= len(ds.y_train):
            raise DataFormatError(f"{path}: indices lie in [{int(idx.min())}, {int(idx.max())}], outside {ds.name}'s "
                                  f"training set [0, {len(ds.y_train) - 1}]")
        x, y, distilled = selection_set(ds, found)
        return x, y, distilled, found.params
    x, y, distilled = found.images, found.labels, found.is_distilled
    if not len(x):
        raise DataFormatError(f"{path}: the synthetic set is empty")
    if tuple(x.shape[1:]) != ds.image_shape or len(y) != len(x) or len(distilled) != len(x):
        raise DataFormatError(f"{path}: images {tuple(x.shape)} / labels {len(y)} / is_distilled {len(distilled)} "
                              f"do not fit {ds.name} images of shape {ds.image_shape}")
    if y.min() < 0 or y.max() >= ds.num_classes:
        raise DataFormatError(f"{path}: labels lie in [{int(y.min())}, {int(y.max())}], outside {ds.name}'s classes "
                              f"[0, {ds.num_classes - 1}]")
    return x, y, distilled, found.config


# ----------------------------------------------------------------------------- evaluation

@dataclass(frozen=True)
class TestSplit:
    x: torch.Tensor       # normalised test images
    y: torch.Tensor
    idx: torch.Tensor     # their indices in ds.x_test
    val: torch.Tensor     # bool: the validation half (chooses hyperparameters)
    test: torch.Tensor    # bool: the test half (reported)


def val_test_masks(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Alternate images within each class: a class-balanced validation half and test half."""
    val = torch.zeros(len(y), dtype=torch.bool)
    for c in y.unique():
        val[(y == c).nonzero().flatten()[::2]] = True
    return val, ~val


def test_split(ds: ImageDataset, profile: Profile) -> TestSplit:
    """The profile's test images (a class-balanced sample if it says so), split into halves."""
    n = profile.test_subset
    idx = torch.arange(len(ds.y_test)) if not n or n >= len(ds.y_test) else \
        random_subset(ds.y_test, n // ds.num_classes, seed=TEST_SAMPLE_SEED, num_classes=ds.num_classes).select_idx
    val, test = val_test_masks(ds.y_test[idx])
    return TestSplit(ds.normalize(ds.x_test[idx]), ds.y_test[idx], idx, val, test)


def evaluate_set(ds: ImageDataset, x: torch.Tensor, y: torch.Tensor, distilled: torch.Tensor, profile: Profile, *,
                 augmentation: str | None = None, runs: int | None = None, seed: int = 0,
                 test_hardness: torch.Tensor | None = None, train_config: TrainConfig | None = None,
                 device: DeviceLike = "cpu", progress: bool = False) -> dict:
    """The evaluation protocol (module docstring) for the training set ``(x, y, distilled)``.

    ``augmentation`` and ``runs`` default to the profile's; ``train_config`` replaces the profile's recipe
    (the command line's ``--model/--epochs/--lr`` overrides); ``test_hardness`` (one value per test image
    of ``ds``) adds the easy and hard halves of the test half."""
    cfg = train_config or profile.eval_config(len(ds.y_train), len(x), ds.image_size)
    if augmentation is not None:
        cfg = cfg.with_(augmentation=augmentation)
    runs = profile.runs if runs is None else runs
    split = test_split(ds, profile)
    groups = {"val": split.val, "test": split.test}
    if test_hardness is not None:
        if len(test_hardness) != len(ds.y_test):
            raise ValueError(f"test_hardness has {len(test_hardness)} values but {ds.name} has {len(ds.y_test)} "
                             "test images")
        members = split.test.nonzero().flatten()
        by_hardness = halves(test_hardness[split.idx][members])          # stable: ties broken by index
        for name in ("easy", "hard"):
            mask = torch.zeros(len(split.y), dtype=torch.bool)
            mask[members[by_hardness[name]]] = True
            groups[name] = mask
    res = evaluate(x, y, split.x, split.y, cfg, runs=runs, seed=seed, num_classes=ds.num_classes,
                   distilled=distilled, groups=groups, progress=progress, device=device)
    g = res.groups
    return {"mean": g["test"]["mean"], "std": g["test"]["std"], "runs": g["test"]["runs"],
            "val": g["val"]["mean"], "groups": {k: v for k, v in g.items() if k in ("easy", "hard")},
            "epochs": cfg.epochs, "n_train": len(x), "n_test": int(split.test.sum()), "n_val": int(split.val.sum()),
            "seconds": res.seconds}


# ----------------------------------------------------------------------------- scores, experts, distillation

def difficulty_scores(ds: ImageDataset, cfg: TrainConfig, *, seed: int = 0, el2n_epoch: int = 2,
                      device: DeviceLike = "cpu", progress: bool = False) -> DifficultyRecord:
    """Forgetting (training and test images) and EL2N, recorded while training ``cfg`` on the whole
    training set; EL2N after ``el2n_epoch`` epochs (at most the number of epochs)."""
    return record_difficulty(ds.normalize(ds.x_train), ds.y_train, cfg, seed, x_test=ds.normalize(ds.x_test),
                             y_test=ds.y_test, el2n_epoch=min(el2n_epoch, cfg.epochs), num_classes=ds.num_classes,
                             progress=progress, device=device)


def expert_trajectories(ds: ImageDataset, cfg: ExpertConfig, out: str | os.PathLike, *, seed: int = 0,
                        device: DeviceLike = "cpu", resume: bool = True, force: bool = False, progress: bool = False,
                        extra: dict | None = None) -> Path:
    """Train ``cfg.num_experts`` experts into ``out`` (on ``cfg.max_per_class`` images per class if set),
    each one's test accuracy measured on the whole test set after every epoch. Returns ``out``."""
    idx = expert_indices(ds.y_train, cfg.max_per_class, seed, ds.num_classes)
    train_experts(ds.normalize(ds.x_train[idx]), ds.y_train[idx], ds.normalize(ds.x_test), ds.y_test, cfg, Path(out),
                  seed=seed, num_classes=ds.num_classes, device=device, resume=resume, force=force, progress=progress,
                  identity=data_identity(ds), extra=extra)
    return Path(out)


def check_experts_dataset(ds: ImageDataset, experts: str | os.PathLike) -> None:
    """Experts trained on another dataset are refused, naming both (their ``config.json`` says which)."""
    record = Path(experts) / "config.json"
    made_on = (json.loads(record.read_text()).get("identity") or {}).get("dataset") if record.exists() else None
    if made_on is not None and made_on != ds.name:
        raise ValueError(f"the experts in {experts} were trained on dataset {made_on!r}, not {ds.name!r}; train "
                         f"experts on {ds.name} (`selmatch experts --dataset {ds.name} --out ...`)")


def distill_selection(ds: ImageDataset, sel: Selection, experts: str | os.PathLike, setting: Preset, *, seed: int = 0,
                      device: DeviceLike = "cpu", out: str | os.PathLike | None = None, resume: bool = False,
                      keep_at: tuple[int, ...] = (), progress: bool = False) -> DistillResult:
    """Distill ``sel`` (D_select frozen, D_distill learned) against ``experts``, with the network of
    ``setting.expert`` and the hyperparameters of ``setting.distill``; the images at ``keep_at`` come back in
    the result's ``snapshots``."""
    check_experts_dataset(ds, experts)
    x = ds.normalize(ds.x_train[sel.indices])
    n = len(sel.select_idx)
    return distill(x[:n], ds.y_train[sel.select_idx], x[n:], ds.y_train[sel.distill_idx], experts,
                   setting.expert.model, num_classes=ds.num_classes, cfg=setting.distill, width=setting.expert.width,
                   depth=setting.expert.depth, seed=seed, out=out, resume=resume, keep_at=keep_at,
                   progress=progress, device=device, identity=run_identity(ds, sel, experts))


def run_identity(ds: ImageDataset, sel: Selection, experts: str | os.PathLike) -> dict:
    """What a distillation depends on besides its hyperparameters: the data, exactly which images were
    selected (a digest of the indices), and which experts (a digest of the folder's record)."""
    record = Path(experts) / "config.json"
    made = json.loads(record.read_text()) if record.exists() else {}
    return {**data_identity(ds), "selection": sel.params,
            "indices": hashlib.sha256(sel.indices.numpy().tobytes()).hexdigest()[:16],
            "experts": config_key({k: made.get(k) for k in ("expert", "seed", "identity")})}


# ----------------------------------------------------------------------------- coverage

def feature_network(ds: ImageDataset, cfg: TrainConfig, *, seed: int = 0, device: DeviceLike = "cpu",
                    path: str | os.PathLike | None = None, progress: bool = False) -> torch.nn.Module:
    """The network whose penultimate layer defines coverage, trained on the whole training set (read from
    ``path`` when it holds one, written there otherwise)."""
    if path is not None and Path(path).exists():
        model = new_model(cfg, ds.image_shape[0], ds.num_classes, ds.image_size, seed, device)
        model.load_state_dict(torch.load(path, weights_only=True, map_location=resolve_device(device)))
        return model.eval()
    model = train(ds.normalize(ds.x_train), ds.y_train, cfg, seed, num_classes=ds.num_classes, progress=progress,
                  desc="features", device=device)
    if path is not None:
        atomic_write(path, lambda p: torch.save(model.state_dict(), p))
    return model


class CoverageProbe:
    """Coverage of (a class-balanced sample of) the real training images by a set of images, in the
    feature space of ``net``; with ``hardness``, also of the easy and hard halves of that sample. The
    radius is measured once, on the first call, and reused; features and distances are computed on the
    network's device."""

    def __init__(self, ds: ImageDataset, net: torch.nn.Module, *, n_real: int | None, seed: int = 0,
                 hardness: torch.Tensor | None = None):
        if n_real is not None and n_real < ds.num_classes:
            raise ValueError(f"n_real={n_real} must be at least the number of classes ({ds.num_classes}), or None "
                             "for every training image")
        self.net = net
        n = n_real or len(ds.y_train)
        self.real_idx = random_subset(ds.y_train, max(1, n // ds.num_classes), seed + REAL_SAMPLE_OFFSET,
                                      ds.num_classes).select_idx if n < len(ds.y_train) else torch.arange(len(ds.y_train))
        self.real = features(net, ds.normalize(ds.x_train[self.real_idx]))
        self.groups = halves(hardness[self.real_idx]) if hardness is not None else None
        self.radius = None

    def __call__(self, images: torch.Tensor) -> dict:
        out = coverage(self.real, features(self.net, images), self.radius, self.groups,
                       device=model_device(self.net))
        self.radius = out["radius"]
        return out
