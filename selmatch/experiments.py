"""The paper's analyses as cached experiment units, shared by the notebooks.

Each function takes an :class:`Context` (profile, dataset, seed, where results go) and returns a
JSON-able dict through :func:`selmatch.cache.cached`, so a rebuild of the book reads results instead of
recomputing, an interrupted notebook resumes at the first missing unit, and every number carries the
config and code version that made it. Large artifacts (experts, feature networks) live in ``runs/``.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from .cache import cached, config_key
from .coverage import coverage, features
from .data import ImageDataset, load_dataset
from .difficulty import record_difficulty
from .distill import distill
from .evaluate import evaluate, halves, selection_set
from .experts import expert_indices, train_experts
from .presets import PRESETS, Preset
from .profiles import Profile, get_profile
from .scores import load_scores
from .select import random_subset, sliding_window
from .train import new_model, train


@dataclass(frozen=True)
class Context:
    profile: str = "smoke"
    dataset: str = "cifar10"
    seed: int = 0
    device: str = "cpu"
    results: str = "results"     # small, committed results: <results>/<profile>/<name>-<hash>.json
    runs: str = "runs"           # large artifacts, not committed

    @property
    def prof(self) -> Profile:
        return get_profile(self.profile)

    @property
    def root(self) -> Path:
        return Path(self.results) / self.profile

    def base(self) -> dict:
        """What every result depends on; the profile's full definition is hashed in, so editing a
        profile recomputes its results instead of reusing stale ones."""
        return {"profile": self.profile, "profile_config": config_key(asdict(self.prof)), "dataset": self.dataset,
                "seed": self.seed}

    def preset(self, ipc: int | None = None) -> Preset:
        if self.prof.preset != "paper":
            preset = PRESETS[self.prof.preset]
            if self.dataset.startswith("tinyimagenet"):         # a 64x64 variant if the scale has one
                preset = PRESETS.get(f"{self.prof.preset}-tiny", preset)
            if self.dataset.startswith("tinyimagenet") and preset.expert.depth is None:   # ConvNetD4 for 64x64
                preset = replace(preset, expert=replace(preset.expert, depth=4))
            return preset
        family = "tinyimagenet" if self.dataset.startswith("tinyimagenet") else self.dataset
        matches = [p for p in PRESETS.values() if p.dataset == family and (ipc is None or p.ipc == ipc)]
        if not matches:
            raise ValueError(f"no paper preset for dataset={self.dataset!r}, ipc={ipc}")
        return matches[0]


@lru_cache(maxsize=2)
def dataset(name: str) -> ImageDataset:
    return load_dataset(name)


def _cached(ctx: Context, name: str, config: dict, compute) -> dict:
    """:func:`cached` under the context's results folder, recording which copy of the data was used.
    The data source is deliberately not part of the key (a rebuild from committed results needs no data);
    to compute on another copy, point ``SELMATCH_RESULTS`` at a new folder."""
    return cached(name, config, compute, ctx.root, provenance=lambda: {"data": dataset(ctx.dataset).source})


def test_split(ctx: Context, ds: ImageDataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalised test images, labels and their indices (a class-balanced sample if the profile says so)."""
    n = ctx.prof.test_subset
    idx = torch.arange(len(ds.y_test)) if not n or n >= len(ds.y_test) else \
        random_subset(ds.y_test, n // ds.num_classes, seed=12345, num_classes=ds.num_classes).select_idx
    return ds.normalize(ds.x_test[idx]), ds.y_test[idx], idx


def val_test_masks(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split test images into a validation half (chooses hyperparameters such as beta) and a test half
    (reports accuracy): alternate images within each class, so both halves are class-balanced."""
    val = torch.zeros(len(y), dtype=torch.bool)
    for c in y.unique():
        members = (y == c).nonzero().flatten()
        val[members[::2]] = True
    return val, ~val


def _eval(ctx: Context, ds, x, y, distilled, augmentation: str, runs: int, test_hardness=None) -> dict:
    """Accuracy over ``runs`` trainings: ``mean``/``std`` on the test half, ``val`` on the validation half,
    ``easy``/``hard`` = the test half split by test-image hardness."""
    cfg = ctx.prof.eval_config(len(ds.y_train), len(x), ds.image_size).with_(augmentation=augmentation,
                                                                            device=ctx.device)
    x_test, y_test, idx = test_split(ctx, ds)
    val, test = val_test_masks(y_test)
    groups = {"val": val, "test": test}
    if test_hardness is not None:
        members = test.nonzero().flatten()
        split = halves(test_hardness[idx][members])          # stable: ties broken by index
        for name in ("easy", "hard"):
            mask = torch.zeros(len(y_test), dtype=torch.bool)
            mask[members[split[name]]] = True
            groups[name] = mask
    res = evaluate(x, y, x_test, y_test, cfg, runs=runs, seed=ctx.seed, num_classes=ds.num_classes,
                   distilled=distilled, groups=groups, progress=False)
    g = res.groups
    return {"mean": g["test"]["mean"], "std": g["test"]["std"], "runs": g["test"]["runs"],
            "val": g["val"]["mean"], "groups": {k: v for k, v in g.items() if k in ("easy", "hard")},
            "epochs": cfg.epochs, "n_train": len(x), "n_test": int(test.sum()), "n_val": int(val.sum()),
            "seconds": res.seconds}


# ----------------------------------------------------------------------------- scores

def our_scores(ctx: Context) -> dict:
    """Forgetting (train and test) and EL2N recorded while training the profile's score network."""
    cfg = ctx.prof.scores.with_(device=ctx.device)
    config = {**ctx.base(), "train": asdict(cfg)}

    def compute():
        ds = dataset(ctx.dataset)
        rec = record_difficulty(ds.normalize(ds.x_train), ds.y_train, cfg, ctx.seed, x_test=ds.normalize(ds.x_test),
                                y_test=ds.y_test, el2n_epoch=min(2, cfg.epochs), num_classes=ds.num_classes,
                                progress=False)
        return {"final_train_acc": rec.train_history[-1].double().mean().item() * 100,
                "final_test_acc": rec.test_history[-1].double().mean().item() * 100,
                "arrays": {"forgetting_train": rec.forgetting_train.numpy(), "forgetting_test": rec.forgetting_test.numpy(),
                           "el2n": rec.el2n_train.numpy()}}

    return _cached(ctx, "our_scores", config, compute)


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Rank correlation (average ranks for ties)."""
    def ranks(v):
        v = v.double()
        order = torch.argsort(v, stable=True)
        r = torch.empty_like(v)
        r[order] = torch.arange(len(v), dtype=torch.float64)
        uniq, inv = torch.unique(v, return_inverse=True)   # average the ranks of tied values
        sums = torch.zeros(len(uniq), dtype=torch.float64).index_add_(0, inv, r)
        counts = torch.zeros(len(uniq), dtype=torch.float64).index_add_(0, inv, torch.ones_like(r))
        return (sums / counts)[inv]
    return torch.corrcoef(torch.stack([ranks(a), ranks(b)]))[0, 1].item()


def score_study(ctx: Context, per_class: int = 4) -> dict:
    """Our forgetting scores against the published C-scores and forgetting counts."""
    ours = our_scores(ctx)
    config = {**ctx.base(), "ours": ours["key"], "per_class": per_class}

    def compute():
        ds = dataset(ctx.dataset)
        h = {"ours (forgetting)": hardness(ctx, "ours")}
        for kind in ("cscore", "forgetting"):
            try:
                h[f"published {kind}"] = load_scores(ds, kind)
            except FileNotFoundError:
                pass
        names = list(h)
        corr = [[spearman(h[a], h[b]) for b in names] for a in names]
        hist = {k: np.histogram(v.numpy(), bins=30)[0].tolist() for k, v in h.items()}
        edges = {k: np.histogram(v.numpy(), bins=30)[1].tolist() for k, v in h.items()}
        ref = names[1] if len(names) > 1 else names[0]
        easy, hard = [], []
        for c in range(ds.num_classes):
            members = (ds.y_train == c).nonzero().flatten()
            order = members[torch.sort(h[ref][members].double(), stable=True).indices]
            easy.append(order[:per_class])
            hard.append(order[-per_class:].flip(0))
        return {"names": names, "spearman": corr, "hist": hist, "edges": edges, "reference": ref,
                "classes": list(ds.classes), "ours_train_acc": ours["result"]["final_train_acc"],
                "ours_test_acc": ours["result"]["final_test_acc"],
                "arrays": {"easy": summary_images(ds, torch.cat(easy).numpy()),
                           "hard": summary_images(ds, torch.cat(hard).numpy())}}

    return _cached(ctx, "score_study", config, compute)


def hardness(ctx: Context, score: str) -> torch.Tensor:
    """Hardness of every training image: published (``cscore``, ``forgetting``) or ``ours`` (forgetting here)."""
    if score == "ours":
        return torch.from_numpy(our_scores(ctx)["result"]["arrays"]["forgetting_train"])
    return load_scores(dataset(ctx.dataset), score)


def test_hardness(ctx: Context) -> torch.Tensor:
    return torch.from_numpy(our_scores(ctx)["result"]["arrays"]["forgetting_test"])


# ----------------------------------------------------------------------------- selection-only baselines

def window_eval(ctx: Context, ipc: int, beta: float, score: str = "cscore", start_mode: str = "fraction",
                augmentation: str = "dsa", runs: int | None = None) -> dict:
    runs = runs or ctx.prof.runs
    config = {**ctx.base(), "ipc": ipc, "beta": beta, "score": score, "start_mode": start_mode,
              "augmentation": augmentation, "runs": runs}

    def compute():
        ds = dataset(ctx.dataset)
        h = hardness(ctx, score)
        try:
            sel = sliding_window(h, ds.y_train, ipc, beta, 0.0, start_mode, ds.num_classes)
        except ValueError as e:    # a window that does not fit is cached too: a rebuild without data knows it
            return {"fits": False, "reason": str(e)}
        x, y, distilled = selection_set(ds, sel)
        return {**_eval(ctx, ds, x, y, distilled, augmentation, runs),
                "window_mean_hardness": h[sel.indices].double().mean().item()}

    res = _cached(ctx, "window", config, compute)
    if res["result"].get("fits") is False:
        raise ValueError(res["result"]["reason"])
    return res


def random_eval(ctx: Context, ipc: int, augmentation: str = "dsa", runs: int | None = None) -> dict:
    runs = runs or ctx.prof.runs
    config = {**ctx.base(), "ipc": ipc, "augmentation": augmentation, "runs": runs}

    def compute():
        ds = dataset(ctx.dataset)
        x, y, distilled = selection_set(ds, random_subset(ds.y_train, ipc, ctx.seed, ds.num_classes))
        return _eval(ctx, ds, x, y, distilled, augmentation, runs)

    return _cached(ctx, "random", config, compute)


# ----------------------------------------------------------------------------- experts, features

def experts(ctx: Context, ipc: int | None = None) -> Path:
    preset = ctx.preset(ipc)
    cfg = preset.expert
    out = Path(ctx.runs) / "experts" / f"{ctx.dataset}-{config_key({**ctx.base(), 'expert': asdict(cfg)})}"
    if len(list(out.glob("expert_*.pt"))) < cfg.num_experts:
        ds = dataset(ctx.dataset)
        idx = expert_indices(ds.y_train, cfg.max_per_class, ctx.seed, ds.num_classes)
        x_test, y_test, _ = test_split(ctx, ds)
        train_experts(ds.normalize(ds.x_train[idx]), ds.y_train[idx], x_test, y_test, cfg, out, seed=ctx.seed,
                      num_classes=ds.num_classes, device=ctx.device, resume=True, progress=False,
                      extra={"dataset": ctx.dataset, "profile": ctx.profile})
    return out


def feature_net(ctx: Context):
    ds = dataset(ctx.dataset)
    cfg = ctx.prof.features.with_(device=ctx.device)
    path = Path(ctx.runs) / "features" / f"{ctx.dataset}-{config_key({**ctx.base(), 'train': asdict(cfg)})}.pt"
    model = new_model(cfg, ds.image_shape[0], ds.num_classes, ds.image_size, ctx.seed)
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()
    model = train(ds.normalize(ds.x_train), ds.y_train, cfg, ctx.seed, num_classes=ds.num_classes, progress=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model


class CoverageProbe:
    """Coverage of (a sample of) the real training set, with easy/hard halves by our forgetting scores."""

    def __init__(self, ctx: Context):
        ds = dataset(ctx.dataset)
        self.net = feature_net(ctx)
        n = ctx.prof.coverage_real or len(ds.y_train)
        idx = random_subset(ds.y_train, n // ds.num_classes, 777, ds.num_classes).select_idx \
            if n < len(ds.y_train) else torch.arange(len(ds.y_train))
        self.real = features(self.net, ds.normalize(ds.x_train[idx]))
        self.groups = halves(hardness(ctx, "ours")[idx])
        self.radius = None

    def __call__(self, images: torch.Tensor) -> dict:
        out = coverage(self.real, features(self.net, images), self.radius, self.groups)
        self.radius = out["radius"]
        return out


# ----------------------------------------------------------------------------- SelMatch / MTT

def selmatch_run(ctx: Context, ipc: int, alpha: float, beta: float, init: str = "window", score: str = "cscore",
                 start_mode: str = "fraction", augmentation: str = "combined", iterations: int | None = None,
                 eval_at: tuple[int, ...] = (), with_coverage: bool = False, runs: int | None = None) -> dict:
    """Distill (window or random init), then evaluate the final set. ``eval_at`` records accuracy (1 run)
    and, with ``with_coverage``, coverage at those iterations; they never choose the result."""
    runs = runs or ctx.prof.runs
    preset = ctx.preset(ipc)
    dcfg = preset.distill if iterations is None else preset.distill.with_(iterations=iterations)
    config = {**ctx.base(), "ipc": ipc, "alpha": alpha, "beta": beta, "init": init, "score": score,
              "start_mode": start_mode, "augmentation": augmentation,
              # the memory mode computes the same gradients, so it is not part of what a result depends on
              "distill": {k: v for k, v in asdict(dcfg).items() if k != "memory"},
              "expert": asdict(preset.expert), "eval_at": list(eval_at), "coverage": with_coverage, "runs": runs}

    # the distillation itself does not depend on how it is evaluated: one run folder serves all evaluations
    run_key = {k: v for k, v in config.items() if k not in ("augmentation", "eval_at", "coverage", "runs")}

    def compute():
        ds = dataset(ctx.dataset)
        if init == "random":
            sel = random_subset(ds.y_train, ipc, ctx.seed, ds.num_classes, alpha=alpha)
        else:
            sel = sliding_window(hardness(ctx, score), ds.y_train, ipc, beta, alpha, start_mode, ds.num_classes)
        probe = CoverageProbe(ctx) if with_coverage else None
        th = test_hardness(ctx)

        def on_eval(it, images, labels, flags):
            out = {"accuracy": _eval(ctx, ds, images, labels, flags, augmentation, 1, th)}
            if probe is not None:
                out["coverage"] = probe(images)
            return out

        x_s, x_d = ds.normalize(ds.x_train[sel.select_idx]), ds.normalize(ds.x_train[sel.distill_idx])
        exp = experts(ctx, ipc)
        res = distill(x_s, ds.y_train[sel.select_idx], x_d, ds.y_train[sel.distill_idx], exp, preset.expert.model,
                      num_classes=ds.num_classes, cfg=dcfg, width=preset.expert.width,
                      depth=preset.expert.depth, seed=ctx.seed, eval_at=eval_at, on_eval=on_eval,
                      out=Path(ctx.runs) / "distill" / f"{ctx.dataset}-{config_key(run_key)}", resume=True,
                      progress=False)
        final = _eval(ctx, ds, res.images, res.labels, res.is_distilled, augmentation, runs, th)
        out = {"final": final, "syn_lr": res.syn_lr, "loss": res.history["loss"], "evals": res.history["evals"],
               "distill_seconds": float(sum(res.history["seconds"]))}
        if probe is not None:
            out["coverage"] = probe(res.images)
        return out

    return _cached(ctx, "selmatch", config, compute)


def random_coverage(ctx: Context, ipc: int) -> dict:
    """Coverage of the real data by a random class-balanced subset."""
    config = {**ctx.base(), "ipc": ipc, "features": asdict(ctx.prof.features), "real": ctx.prof.coverage_real}

    def compute():
        ds = dataset(ctx.dataset)
        sel = random_subset(ds.y_train, ipc, ctx.seed, ds.num_classes)
        return CoverageProbe(ctx)(ds.normalize(ds.x_train[sel.select_idx]))

    return _cached(ctx, "random_coverage", config, compute)


def window_coverage(ctx: Context, ipc: int, beta: float, score: str = "cscore", start_mode: str = "fraction") -> dict:
    """Coverage of the real data by the window alone (SelMatch's iteration 0)."""
    config = {**ctx.base(), "ipc": ipc, "beta": beta, "score": score, "start_mode": start_mode,
              "features": asdict(ctx.prof.features), "real": ctx.prof.coverage_real}

    def compute():
        ds = dataset(ctx.dataset)
        sel = sliding_window(hardness(ctx, score), ds.y_train, ipc, beta, 0.0, start_mode, ds.num_classes)
        return CoverageProbe(ctx)(ds.normalize(ds.x_train[sel.indices]))

    return _cached(ctx, "window_coverage", config, compute)


def best_beta(ctx: Context, ipc: int, betas: list[float], score: str = "cscore", start_mode: str = "fraction") -> dict:
    """The window start with the best *validation* accuracy among ``betas`` (those that fit)."""
    rows = []
    for beta in betas:
        try:
            rows.append({"beta": beta, **window_eval(ctx, ipc, beta, score, start_mode)["result"]})
        except ValueError:
            continue
    if not rows:
        raise ValueError(f"no beta in {betas} fits ipc={ipc}")
    return max(rows, key=lambda r: (r["val"], -r["beta"]))


def env_context(**overrides) -> Context:
    """A context whose roots may be moved by ``SELMATCH_RESULTS`` / ``SELMATCH_RUNS`` (tests use this)."""
    roots = {"results": os.environ.get("SELMATCH_RESULTS", "results"), "runs": os.environ.get("SELMATCH_RUNS", "runs")}
    return Context(**{**roots, **overrides})


def summary_images(ds: ImageDataset, idx: np.ndarray) -> np.ndarray:
    """uint8 HWC thumbnails of the given training images (stored with results for offline pages)."""
    return ds.x_train[torch.as_tensor(idx)].permute(0, 2, 3, 1).numpy()
