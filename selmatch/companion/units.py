"""The paper's analyses as cached experiment units, shared by the notebooks.

Each function takes an :class:`Context` (profile, dataset, seed, where results go) and returns a
JSON-able dict through :func:`selmatch.companion.cache.cached`, so a rebuild of the book reads results instead of
recomputing, an interrupted notebook resumes at the first missing unit, and every number carries the
config and code version that made it. Large artifacts (experts, feature networks) live in ``runs/``.
"""
from __future__ import annotations

import functools
import os
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from .. import pipeline
from ..artifacts import config_key
from ..evaluate import selection_set
from ..experts import ExpertConfig
from ..data import DATASETS, ImageDataset, load_dataset
from ..device import provenance
from ..distill import MissingSnapshots
from ..scores import load_scores
from ..settings import Preset, Profile, get_profile
from .cache import Job, run


@dataclass(frozen=True)
class Context:
    """Where a unit runs: the profile, dataset and seed its results depend on, the device it computes on
    (recorded with each result, not part of its key: see :mod:`selmatch.device`), and where results go."""

    profile: str = "smoke"
    dataset: str = "cifar10"
    seed: int = 0
    device: str = "cpu"
    results: str = "results"     # small, committed results: <results>/<profile>/<name>-<hash>.json
    runs: str = "runs"           # large artifacts, not committed
    read: str | None = None      # results read but never written (the committed ones, for a notebook run outside
                                 # the book's runner: :func:`env_context`)

    @property
    def prof(self) -> Profile:
        return get_profile(self.profile)

    @property
    def root(self) -> Path:
        return Path(self.results) / self.profile

    @property
    def read_root(self) -> Path | None:
        return None if self.read is None else Path(self.read) / self.profile

    def base(self) -> dict:
        """What every result depends on. Each unit adds the parts of the profile it uses (:meth:`evaluation`,
        the score, feature or expert recipe), so editing the evaluation recomputes every evaluated result
        but not the scores, features or experts, and no result is reused with a stale recipe."""
        return {"profile": self.profile, "dataset": self.dataset, "seed": self.seed}

    def evaluation(self) -> dict:
        """The profile's evaluation protocol (network recipe, budget rule, test sample), for every unit
        that evaluates a set."""
        p = self.prof
        return {"eval": asdict(p.eval), "eval_full_epochs": p.eval_full_epochs, "eval_max_epochs": p.eval_max_epochs,
                "eval_min_epochs": p.eval_min_epochs, "test_subset": p.test_subset}

    def scores_recipe(self) -> dict:
        """The network our forgetting scores come from (the test halves and coverage halves use them)."""
        return {"scores": asdict(self.prof.scores)}

    def setting(self, ipc: int | None = None) -> Preset:
        """The experts and distillation at this profile for this dataset (known without loading it)."""
        return self.prof.setting(self.dataset, DATASETS[self.dataset].image_shape[-1], ipc)


@lru_cache(maxsize=2)
def dataset(name: str) -> ImageDataset:
    return load_dataset(name)


def unit(builder):
    """A unit builds a :class:`~.cache.Job`; calling the unit runs its job and returns the record
    (``name.job(...)`` gives the job itself, for :func:`~.cache.run`, which runs many at once)."""
    @functools.wraps(builder)
    def call(*args, **kwargs) -> dict:
        return builder(*args, **kwargs)()

    call.job = builder
    return call


def _job(ctx: Context, name: str, config: dict, compute, prepare=None) -> Job:
    """A job under the context's results folder, recording which copy of the data was used and where the
    result was computed. The data source is deliberately not part of the key (a rebuild from committed
    results needs no data); to compute on another copy, point ``SELMATCH_RESULTS`` at a new folder."""
    return Job(name, config, compute, ctx.root, prepare=prepare, read_also=ctx.read_root,
               provenance=lambda: {"data": dataset(ctx.dataset).source,
                                   "fingerprint": dataset(ctx.dataset).fingerprint[:16], **provenance(ctx.device)})


def _eval(ctx: Context, ds, x, y, distilled, augmentation: str, runs: int, test_hardness=None) -> dict:
    return pipeline.evaluate_set(ds, x, y, distilled, ctx.prof, augmentation=augmentation, runs=runs, seed=ctx.seed,
                                 test_hardness=test_hardness, device=ctx.device)


# ----------------------------------------------------------------------------- scores

@unit
def our_scores(ctx: Context) -> Job:
    """Forgetting (train and test) and EL2N recorded while training the profile's score network."""
    cfg = ctx.prof.scores
    config = {**ctx.base(), "train": asdict(cfg)}

    def compute():
        rec = pipeline.difficulty_scores(dataset(ctx.dataset), cfg, seed=ctx.seed, device=ctx.device)
        return {"final_train_acc": rec.train_history[-1].double().mean().item() * 100,
                "final_test_acc": rec.test_history[-1].double().mean().item() * 100,
                "arrays": {"forgetting_train": rec.forgetting_train.numpy(), "forgetting_test": rec.forgetting_test.numpy(),
                           "el2n": rec.el2n_train.numpy()}}

    return _job(ctx, "our_scores", config, compute)


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


@unit
def score_study(ctx: Context, per_class: int = 4) -> Job:
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

    return _job(ctx, "score_study", config, compute)


def hardness(ctx: Context, score: str) -> torch.Tensor:
    """Hardness of every training image: published (``cscore``, ``forgetting``) or ``ours`` (forgetting here)."""
    if score == "ours":
        return torch.from_numpy(our_scores(ctx)["result"]["arrays"]["forgetting_train"])
    return load_scores(dataset(ctx.dataset), score)


def test_hardness(ctx: Context) -> torch.Tensor:
    return torch.from_numpy(our_scores(ctx)["result"]["arrays"]["forgetting_test"])


# ----------------------------------------------------------------------------- selection-only baselines

@unit
def window_eval(ctx: Context, ipc: int, beta: float, score: str = "cscore", start_mode: str = "fraction",
                augmentation: str = "dsa", runs: int | None = None) -> Job:
    runs = runs or ctx.prof.runs
    config = {**ctx.base(), **ctx.evaluation(), "ipc": ipc, "beta": beta, "score": score, "start_mode": start_mode,
              "augmentation": augmentation, "runs": runs}
    if score == "ours":
        config.update(ctx.scores_recipe())

    def compute():
        ds = dataset(ctx.dataset)
        h = hardness(ctx, score)
        try:
            sel = pipeline.initial_selection(ds, init="window", ipc=ipc, alpha=0.0, beta=beta, hardness=h,
                                             start_mode=start_mode)
        except ValueError as e:    # a window that does not fit is cached too: a rebuild without data knows it
            return {"fits": False, "reason": str(e)}
        x, y, distilled = selection_set(ds, sel)
        return {**_eval(ctx, ds, x, y, distilled, augmentation, runs),
                "window_mean_hardness": h[sel.indices].double().mean().item()}

    return _job(ctx, "window", config, compute)


@unit
def random_eval(ctx: Context, ipc: int, augmentation: str = "dsa", runs: int | None = None) -> Job:
    runs = runs or ctx.prof.runs
    config = {**ctx.base(), **ctx.evaluation(), "ipc": ipc, "augmentation": augmentation, "runs": runs}

    def compute():
        ds = dataset(ctx.dataset)
        x, y, distilled = selection_set(ds, pipeline.initial_selection(ds, init="random", ipc=ipc, alpha=0.0,
                                                                       seed=ctx.seed))
        return _eval(ctx, ds, x, y, distilled, augmentation, runs)

    return _job(ctx, "random", config, compute)


@unit
def eval_budget(ctx: Context, ipc: int, full_epochs: float, max_epochs: int | None = None, runs: int = 1,
                lr: float | None = None, min_epochs: int = 10) -> Job:
    """A random class-balanced subset evaluated with a given training budget: ``full_epochs`` passes over the
    whole training set's worth of images (epochs = full_epochs * N / subset size, at most ``max_epochs``, at
    least ``min_epochs``).
    ``lr`` replaces the recipe's learning rate. The pilot that chooses the profile's evaluation budget (its
    key leaves the profile's own budget out)."""
    prof = replace(ctx.prof, eval_full_epochs=full_epochs, eval_max_epochs=max_epochs, eval_min_epochs=min_epochs)
    if lr is not None:
        prof = replace(prof, eval=prof.eval.with_(lr=lr))
    config = {**ctx.base(), "eval": asdict(prof.eval), "eval_min_epochs": prof.eval_min_epochs,
              "test_subset": prof.test_subset, "ipc": ipc, "full_epochs": full_epochs, "max_epochs": max_epochs,
              "runs": runs}

    def compute():
        ds = dataset(ctx.dataset)
        x, y, distilled = selection_set(ds, pipeline.initial_selection(ds, init="random", ipc=ipc, alpha=0.0,
                                                                       seed=ctx.seed))
        cfg = prof.eval_config(len(ds.y_train), len(x), ds.image_size)
        res = pipeline.evaluate_set(ds, x, y, distilled, prof, runs=runs, seed=ctx.seed, device=ctx.device)
        return {**res, "epochs": cfg.epochs, "steps": cfg.epochs * -(-len(x) // cfg.batch_size)}

    return _job(ctx, "eval_budget", config, compute)


# ----------------------------------------------------------------------------- experts, features

def experts(ctx: Context, ipc: int | None = None, cfg: ExpertConfig | None = None) -> Path:
    """The expert trajectories of the profile's setting at ``ipc`` (or of ``cfg``), trained once into ``runs/``."""
    cfg = cfg or ctx.setting(ipc).expert
    out = Path(ctx.runs) / "experts" / f"{ctx.dataset}-{config_key({**ctx.base(), 'expert': asdict(cfg)})}"
    if len(list(out.glob("expert_*.pt"))) < cfg.num_experts:
        pipeline.expert_trajectories(dataset(ctx.dataset), cfg, out, seed=ctx.seed, device=ctx.device, resume=True,
                                     extra={"profile": ctx.profile})
    return out


def coverage_probe(ctx: Context) -> pipeline.CoverageProbe:
    """Coverage of a sample of the real training set, with easy/hard halves by our forgetting scores."""
    ds = dataset(ctx.dataset)
    cfg = ctx.prof.features
    path = Path(ctx.runs) / "features" / f"{ctx.dataset}-{config_key({**ctx.base(), 'train': asdict(cfg)})}.pt"
    net = pipeline.feature_network(ds, cfg, seed=ctx.seed, device=ctx.device, path=path)
    return pipeline.CoverageProbe(ds, net, n_real=ctx.prof.coverage_real, seed=ctx.seed, hardness=hardness(ctx, "ours"))


# ----------------------------------------------------------------------------- SelMatch / MTT

def _distillation(ctx: Context, ipc: int, alpha: float, beta: float, init: str, score: str, start_mode: str,
                  expert: dict | None, distill: dict | None) -> tuple:
    """The setting one distillation runs with (the profile's, changed by ``expert`` / ``distill``), the key
    of its run folder (what the distillation depends on, not how it is evaluated), and a function that runs
    it (or reads it back from that folder when it has finished) and returns ``(dataset, selection, result)``."""
    setting = ctx.setting(ipc)
    if expert:
        setting = replace(setting, expert=replace(setting.expert, **expert))
    if distill:
        setting = replace(setting, distill=setting.distill.with_(**distill))
    run_key = {**ctx.base(), "ipc": ipc, "alpha": alpha, "beta": beta, "init": init, "score": score,
               "start_mode": start_mode,
               # the memory mode computes the same gradients, so it is not part of what a result depends on
               "distill": setting.distill.numbers(),
               "expert": asdict(setting.expert)}
    if score == "ours":
        run_key.update(ctx.scores_recipe())

    def run(keep_at: tuple[int, ...] = ()):
        ds = dataset(ctx.dataset)
        sel = pipeline.initial_selection(ds, init=init, ipc=ipc, alpha=alpha, beta=beta, start_mode=start_mode,
                                         hardness=None if init == "random" else hardness(ctx, score), seed=ctx.seed)
        args = dict(seed=ctx.seed, device=ctx.device, keep_at=keep_at,
                    out=Path(ctx.runs) / "distill" / f"{ctx.dataset}-{config_key(run_key)}")
        path = experts(ctx, ipc, setting.expert)
        try:
            res = pipeline.distill_selection(ds, sel, path, setting, resume=True, **args)
        except MissingSnapshots:    # the folder's run passed these points without keeping them: the same run again
            res = pipeline.distill_selection(ds, sel, path, setting, resume=False, **args)
        return ds, sel, res

    return setting, run_key, run


@unit
def selmatch_run(ctx: Context, ipc: int, alpha: float, beta: float, init: str = "window", score: str = "cscore",
                 start_mode: str = "fraction", augmentation: str = "combined", iterations: int | None = None,
                 eval_at: tuple[int, ...] = (), with_coverage: bool = False, runs: int | None = None,
                 expert: dict | None = None, distill: dict | None = None) -> Job:
    """Distill (window or random init), then evaluate the final set. ``eval_at`` records accuracy (1 run)
    and, with ``with_coverage``, coverage at those iterations; they never choose the result.
    ``expert`` and ``distill`` change fields of the profile's experts and distillation (the pilots that
    chose the profile use them); the result's key holds the settings actually used."""
    runs = runs or ctx.prof.runs
    if iterations is not None:
        distill = {**(distill or {}), "iterations": iterations}
    setting, run_key, distill_run = _distillation(ctx, ipc, alpha, beta, init, score, start_mode, expert, distill)
    config = {**ctx.base(), **ctx.evaluation(), **ctx.scores_recipe(), "ipc": ipc, "alpha": alpha, "beta": beta,
              "init": init, "score": score,
              "start_mode": start_mode, "augmentation": augmentation,
              "distill": run_key["distill"], "expert": run_key["expert"], "eval_at": list(eval_at),
              "coverage": with_coverage, "runs": runs}

    def compute():
        ds, sel, res = distill_run(tuple(eval_at))
        probe = coverage_probe(ctx) if with_coverage else None
        th = test_hardness(ctx)
        evals = {}
        for it, x_it in res.snapshots.items():      # the distillation's trajectory, one run at each point
            images = torch.cat([res.images[~res.is_distilled], x_it])
            evals[str(it)] = {"accuracy": _eval(ctx, ds, images, res.labels, res.is_distilled, augmentation, 1, th)}
            if probe is not None:
                evals[str(it)]["coverage"] = probe(images)
        final = _eval(ctx, ds, res.images, res.labels, res.is_distilled, augmentation, runs, th)
        x0 = selection_set(ds, sel)[0][-len(sel.distill_idx):] if len(sel.distill_idx) else None
        moved = None
        if x0 is not None:      # how far the distilled images went: ||x - x0|| / ||x0||, per image
            d = res.images[res.is_distilled].flatten(1).cpu()
            moved = ((d - x0.flatten(1)).norm(dim=1) / x0.flatten(1).norm(dim=1)).median().item()
        out = {"final": final, "syn_lr": res.syn_lr, "loss": res.history["loss"], "evals": evals,
               "distill_seconds": float(sum(res.history["seconds"])), "moved_median": moved}
        if probe is not None:
            out["coverage"] = probe(res.images)
        return out

    return _job(ctx, "selmatch", config, compute,
                prepare=lambda: (our_scores(ctx), experts(ctx, ipc, setting.expert)))


def _uint8(ds, x: torch.Tensor) -> np.ndarray:
    """Normalised float images -> uint8 HWC, as they would be shown."""
    mean = torch.tensor(ds.mean).view(1, -1, 1, 1)
    std = torch.tensor(ds.std).view(1, -1, 1, 1)
    return ((x.cpu().float() * std + mean).clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


@unit
def distilled_images(ctx: Context, ipc: int, alpha: float, beta: float, init: str = "window", score: str = "cscore",
                     start_mode: str = "fraction", per_class: int = 2, expert: dict | None = None,
                     distill: dict | None = None) -> Job:
    """Pictures of one distillation (the same run folder as :func:`selmatch_run` with these arguments):
    for each class, the first ``per_class`` images of D_distill before and after distillation, and of
    D_select (kept real). Reads the finished run; computes it only when its folder is missing."""
    setting, run_key, distill_run = _distillation(ctx, ipc, alpha, beta, init, score, start_mode, expert, distill)
    config = {**run_key, "per_class": per_class}

    def compute():
        ds, sel, res = distill_run()
        before = selection_set(ds, sel)[0]
        y, flags = res.labels.cpu(), res.is_distilled.cpu().bool()
        pick = {name: torch.cat([((y == c) & mask).nonzero().flatten()[:per_class] for c in range(ds.num_classes)])
                for name, mask in (("distill", flags), ("select", ~flags))}
        d = pick["distill"]
        change = (res.images.cpu()[d] - before[d]).flatten(1).norm(dim=1) / before[d].flatten(1).norm(dim=1)
        return {"iterations": setting.distill.iterations, "classes": list(ds.classes),
                "arrays": {"before": _uint8(ds, before[d]), "after": _uint8(ds, res.images[d]),
                           "labels": y[d].numpy(), "select": _uint8(ds, before[pick["select"]]),
                           "select_labels": y[pick["select"]].numpy(), "moved": change.numpy()}}

    return _job(ctx, "images", config, compute)


@unit
def synset_download(ctx: Context, ipc: int, alpha: float, beta: float, init: str = "window", score: str = "cscore",
                    start_mode: str = "fraction", augmentation: str = "combined") -> Job:
    """The final set of one distillation (the run folder :func:`selmatch_run` uses with these arguments) as a
    download, ``<results>/<profile>/sets/<file>``: 8-bit pixels, labels, which images are distilled and which real
    image each started from (:func:`selmatch.load_synset` reads it). The 8-bit set is evaluated as the float one
    is (the profile's runs and seeds), so what the rounding and clipping cost is measured, not assumed."""
    from ..artifacts import SynSet, load_synset, save_synset_uint8

    setting, run_key, distill_run = _distillation(ctx, ipc, alpha, beta, init, score, start_mode, None, None)
    method = "mtt" if (init, alpha) == ("random", 1.0) else "selmatch"
    file = f"{ctx.dataset}-{method}-ipc{ipc}-{config_key(run_key)}.npz"
    config = {**ctx.base(), **ctx.evaluation(), **run_key, "augmentation": augmentation, "runs": ctx.prof.runs,
              "file": file}

    def compute():
        ds, sel, res = distill_run()
        meta = {**run_key, "method": method, "profile": ctx.profile, **provenance(ctx.device)}
        path = ctx.root / "sets" / file
        written = save_synset_uint8(path, SynSet(res.images, res.labels, res.is_distilled, sel.indices, res.syn_lr,
                                                 meta), ds.mean, ds.std)
        back = load_synset(path)
        return {"file": file, **written, "images": len(back.labels), "distilled": int(back.is_distilled.sum()),
                "accuracy": _eval(ctx, ds, back.images, back.labels, back.is_distilled, augmentation, ctx.prof.runs)}

    return _job(ctx, "download", config, compute, prepare=lambda: experts(ctx, ipc, setting.expert))


def download_path(ctx: Context, file: str) -> Path:
    """Where a download of :func:`synset_download` lies: this context's results, else the ones it reads."""
    for root in (ctx.root, ctx.read_root):
        if root is not None and (root / "sets" / file).exists():
            return root / "sets" / file
    raise FileNotFoundError(f"the download {file} is in neither {ctx.root / 'sets'} nor "
                            f"{ctx.read_root and ctx.read_root / 'sets'}; compute it again (its result names it)")


@unit
def random_coverage(ctx: Context, ipc: int) -> Job:
    """Coverage of the real data by a random class-balanced subset."""
    config = {**ctx.base(), **ctx.scores_recipe(), "ipc": ipc, "features": asdict(ctx.prof.features),
              "real": ctx.prof.coverage_real}

    def compute():
        ds = dataset(ctx.dataset)
        sel = pipeline.initial_selection(ds, init="random", ipc=ipc, alpha=0.0, seed=ctx.seed)
        return coverage_probe(ctx)(ds.normalize(ds.x_train[sel.select_idx]))

    return _job(ctx, "random_coverage", config, compute)


@unit
def window_coverage(ctx: Context, ipc: int, beta: float, score: str = "cscore", start_mode: str = "fraction") -> Job:
    """Coverage of the real data by the window alone (SelMatch's iteration 0)."""
    config = {**ctx.base(), **ctx.scores_recipe(), "ipc": ipc, "beta": beta, "score": score,
              "start_mode": start_mode, "features": asdict(ctx.prof.features), "real": ctx.prof.coverage_real}

    def compute():
        ds = dataset(ctx.dataset)
        sel = pipeline.initial_selection(ds, init="window", ipc=ipc, alpha=0.0, beta=beta, start_mode=start_mode,
                                         hardness=hardness(ctx, score))
        return coverage_probe(ctx)(ds.normalize(ds.x_train[sel.indices]))

    return _job(ctx, "window_coverage", config, compute)


def best_on_val(rows: list[dict], key: str = "beta") -> dict:
    """The row with the best *validation* accuracy (ties: the smaller ``key``): every choice of a
    hyperparameter in the book is made here, never on the test half."""
    return max(rows, key=lambda r: (r["val"], -r.get(key, 0)))


def windows(ctx: Context, ipcs: list[int], betas: list[float] | dict[int, list[float]], score: str = "cscore",
            start_mode: str = "fraction") -> dict[int, list[dict]]:
    """Per IPC, the windows of ``betas`` (one list for every IPC, or ``{ipc: list}``) that fit their class, each
    as ``{"beta": ..., **result}`` (computed together: side by side under Ray)."""
    per = betas if isinstance(betas, dict) else dict.fromkeys(ipcs, betas)
    pairs = [(ipc, beta) for ipc in ipcs for beta in per[ipc]]
    records = run([window_eval.job(ctx, ipc, beta, score, start_mode) for ipc, beta in pairs], "windows")
    out = {ipc: [] for ipc in ipcs}
    for (ipc, beta), r in zip(pairs, records):
        if r["result"].get("fits") is not False:      # a window past the end of its class is left out
            out[ipc].append({"beta": beta, **r["result"], "augmentation": r["config"]["augmentation"]})
    return out


def best_windows(ctx: Context, ipcs: list[int], betas: list[float] | dict[int, list[float]],
                 score: str = "cscore") -> dict[int, dict]:
    """Per IPC, the window start with the best *validation* accuracy among ``betas`` (as in :func:`windows`; those
    that fit)."""
    out = {}
    for ipc, rows in windows(ctx, ipcs, betas, score).items():
        if not rows:
            raise ValueError(f"no beta in {betas[ipc] if isinstance(betas, dict) else betas} fits ipc={ipc}")
        out[ipc] = best_on_val(rows)
    return out


def best_beta(ctx: Context, ipc: int, betas: list[float], score: str = "cscore") -> dict:
    """The window start with the best *validation* accuracy among ``betas`` at one IPC."""
    return best_windows(ctx, [ipc], betas, score)[ipc]


def results_root(default: str | os.PathLike = "results") -> Path:
    """``SELMATCH_RESULTS``: where the book's cached results live (``default`` when unset)."""
    return Path(os.environ.get("SELMATCH_RESULTS", default))


PLAIN_RUN = "rerun-{profile}"       # where a notebook run outside the book's runner writes (as `selmatch rerun`)
COMMITTED = Path(__file__).resolve().parents[2] / "results"     # the checkout's committed results


def env_context(**overrides) -> Context:
    """The context of a notebook: results in ``SELMATCH_RESULTS`` and large artifacts in ``SELMATCH_RUNS``.

    The book's runner and ``selmatch rerun`` set ``SELMATCH_RESULTS``. A notebook run any other way (plain
    papermill, Jupyter) with it unset never writes into the committed ``results/``: it reads them, and writes
    what is new into ``rerun-PROFILE/results`` (the folder ``selmatch rerun`` uses). Expert trajectories and
    other large artifacts go to ``SELMATCH_RUNS`` (default ``runs/``, never committed) either way."""
    roots = {"results": str(results_root()), "runs": os.environ.get("SELMATCH_RUNS", "runs")}
    if "SELMATCH_RESULTS" not in os.environ:
        folder = Path(PLAIN_RUN.format(profile=overrides.get("profile", Context.profile)))
        roots.update(results=str(folder / "results"), read=str(COMMITTED))
    return Context(**{**roots, **overrides})


def summary_images(ds: ImageDataset, idx: np.ndarray) -> np.ndarray:
    """uint8 HWC thumbnails of the given training images (stored with results for offline pages)."""
    return ds.x_train[torch.as_tensor(idx)].permute(0, 2, 3, 1).numpy()
