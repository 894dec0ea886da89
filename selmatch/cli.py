"""The ``selmatch`` command line. Each subcommand is a thin wrapper over the library; outputs are files.

    selmatch data NAME                      JSON summary of a dataset
    selmatch scores   --dataset D --out F   forgetting / EL2N scores recorded while training a network
    selmatch select   --dataset D --score S --ipc N --beta B --alpha A --out F.npz
    selmatch experts  --dataset D --out DIR                 expert trajectories (one file per expert)
    selmatch distill  --dataset D --experts DIR --out DIR   SelMatch distillation -> DIR/synset.npz
    selmatch evaluate --dataset D --selection F.npz         F: a selection or a synset.npz
    selmatch coverage --dataset D --selection F.npz
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .data import DATASETS, load_dataset
from .formats import DataFormatError
from .profiles import PROFILES, get_profile
from .scores import SCORE_KINDS, find_score_file, load_scores
from .select import START_MODES, load_selection, random_subset, save_selection, sliding_window
from .augment import AUGMENTATIONS
from .networks import MODELS


def _dump(obj: dict, out: str | None) -> None:
    text = json.dumps(obj, indent=2)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")
    print(text)


def _load(args):
    return load_dataset(args.dataset, root=args.root, cache=args.cache, download=not args.no_download)


def _train_cfg(base, args):
    changes = {k: v for k, v in (("model", args.model), ("epochs", args.epochs), ("width", args.width),
                                 ("lr", args.lr), ("augmentation", getattr(args, "aug", None))) if v is not None}
    return base.with_(**changes)


def cmd_data(args) -> int:
    ds = load_dataset(args.name, root=args.root, cache=args.cache, download=not args.no_download)
    info = ds.summary()
    info["scores"] = {k: (str(p) if (p := find_score_file(ds, k, cache=args.cache)) else None) for k in SCORE_KINDS}
    _dump(info, None)
    return 0


def cmd_scores(args) -> int:
    from .difficulty import record_difficulty

    ds = _load(args)
    cfg = _train_cfg(get_profile(args.profile).scores, args)
    t0 = time.perf_counter()
    rec = record_difficulty(ds.normalize(ds.x_train), ds.y_train, cfg, args.seed, x_test=ds.normalize(ds.x_test),
                            y_test=ds.y_test, el2n_epoch=min(args.el2n_epoch, cfg.epochs), num_classes=ds.num_classes)
    params = {"dataset": ds.name, "source": ds.source, "profile": args.profile, "seed": args.seed,
              "train": cfg.__dict__, "el2n_epoch": rec.el2n_epoch, "seconds": time.perf_counter() - t0,
              "version": __version__}
    np.savez(args.out, scores=rec.forgetting_train.numpy(), labels=ds.y_train.numpy(),
             forgetting_test=rec.forgetting_test.numpy(), el2n=rec.el2n_train.numpy(),
             train_history=rec.train_history.numpy(), test_history=rec.test_history.numpy(),
             params=np.array(json.dumps(params)))
    _dump({"out": args.out, **params}, None)
    return 0


def cmd_select(args) -> int:
    ds = _load(args)
    if args.random:
        sel = random_subset(ds.y_train, args.ipc, args.seed, ds.num_classes)
    else:
        hardness = load_scores(ds, args.score, cache=args.cache, download=not args.no_download)
        sel = sliding_window(hardness, ds.y_train, args.ipc, args.beta, args.alpha, args.start, ds.num_classes)
    extra = {"dataset": ds.name, "score": None if args.random else str(args.score), "version": __version__}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_selection(sel, args.out, **extra)
    summary = {"out": args.out, **sel.params, **extra, "n_select": len(sel.select_idx),
               "n_distill": len(sel.distill_idx)}
    if sel.scores is not None:
        summary["mean_hardness_window"] = sel.scores[sel.indices].mean().item()
        summary["mean_hardness_all"] = sel.scores.mean().item()
    _dump(summary, None)
    return 0


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate_on, load_training_set

    ds = _load(args)
    x, y, distilled, params = load_training_set(ds, args.selection)
    prof = get_profile(args.profile)
    cfg = _train_cfg(prof.eval_config(len(ds.y_train), len(x), ds.image_size), args)
    test_hardness = None
    if args.test_scores:
        with np.load(args.test_scores) as z:
            test_hardness = torch.from_numpy(z["forgetting_test"])
        if len(test_hardness) != len(ds.y_test):
            raise ValueError(f"--test-scores has {len(test_hardness)} test scores, {ds.name} has {len(ds.y_test)}")
    res = evaluate_on(ds, x, y, distilled, cfg, runs=args.runs or prof.runs, seed=args.seed, test_hardness=test_hardness)
    out = {"dataset": ds.name, "profile": args.profile, "selection": args.selection, "selection_params": params,
           "n_train": len(x), "n_distilled": int(distilled.sum()), "version": __version__, **res.as_dict()}
    _dump(out, args.out)
    print(f"test accuracy: {res}", file=sys.stderr)
    return 0


def cmd_coverage(args) -> int:
    from .coverage import coverage, features
    from .evaluate import halves, load_training_set
    from .train import train

    ds = _load(args)
    x_syn, _, _, _ = load_training_set(ds, args.selection)
    prof = get_profile(args.profile)
    cfg = _train_cfg(prof.features, args)
    net = train(ds.normalize(ds.x_train), ds.y_train, cfg, args.seed, num_classes=ds.num_classes, desc="features")
    n_real = args.real or prof.coverage_real or len(ds.y_train)
    real_idx = random_subset(ds.y_train, max(1, n_real // ds.num_classes), args.seed, ds.num_classes).select_idx \
        if n_real < len(ds.y_train) else torch.arange(len(ds.y_train))
    real = features(net, ds.normalize(ds.x_train[real_idx]))
    groups = halves(load_scores(ds, args.score, cache=args.cache)[real_idx]) if args.score else None
    cov = coverage(real, features(net, x_syn), groups=groups)
    out = {"dataset": ds.name, "profile": args.profile, "selection": args.selection, "n_real": len(real_idx),
           "n_synthetic": len(x_syn), "feature_net": cfg.__dict__, "score": args.score, "version": __version__, **cov}
    _dump(out, args.out)
    return 0


def _expert_cfg(args):
    from dataclasses import replace

    from .presets import get_preset

    base = get_preset(args.preset).expert
    changes = {k: v for k, v in (("model", args.model), ("width", args.width), ("num_experts", args.num_experts),
                                 ("epochs", args.epochs), ("augmentation", args.aug),
                                 ("max_per_class", args.max_per_class)) if v is not None}
    return replace(base, **changes)


def cmd_experts(args) -> int:
    from .experts import expert_indices, train_experts

    ds = _load(args)
    cfg = _expert_cfg(args)
    idx = expert_indices(ds.y_train, cfg.max_per_class, args.seed, ds.num_classes)
    t0 = time.perf_counter()
    paths = train_experts(ds.normalize(ds.x_train[idx]), ds.y_train[idx], ds.normalize(ds.x_test), ds.y_test, cfg,
                          Path(args.out), seed=args.seed, num_classes=ds.num_classes, resume=args.resume,
                          extra={"dataset": ds.name, "source": ds.source, "preset": args.preset, "version": __version__})
    _dump({"out": args.out, "experts": len(paths), "seconds": time.perf_counter() - t0, "expert": cfg.__dict__}, None)
    return 0


def cmd_distill(args) -> int:
    from dataclasses import replace

    from .distill import config_dict, distill, save_synset
    from .evaluate import evaluate_on
    from .presets import get_preset

    preset = get_preset(args.preset)
    ds = _load(args)
    experts_cfg = json.loads((Path(args.experts) / "config.json").read_text()) \
        if (Path(args.experts) / "config.json").exists() else None
    if experts_cfg is None:
        raise FileNotFoundError(f"{Path(args.experts) / 'config.json'} is missing; train experts with "
                                f"`selmatch experts --out {args.experts}`")
    net = experts_cfg["expert"]
    ipc = args.ipc if args.ipc is not None else preset.ipc
    alpha = args.alpha if args.alpha is not None else preset.alpha
    beta = args.beta if args.beta is not None else preset.beta
    if args.init == "random":
        sel = random_subset(ds.y_train, ipc, args.seed, ds.num_classes, alpha=alpha)
    else:
        hardness = load_scores(ds, args.score or preset.score, cache=args.cache, download=not args.no_download)
        sel = sliding_window(hardness, ds.y_train, ipc, beta, alpha, args.start or preset.start_mode, ds.num_classes)
    changes = {k: v for k, v in (("iterations", args.iterations), ("syn_steps", args.syn_steps),
                                 ("lr_img", args.lr_img), ("memory", args.memory)) if v is not None}
    cfg = replace(preset.distill, **changes)
    prof = get_profile(args.profile)
    eval_at = tuple(int(v) for v in args.eval_at.split(",")) if args.eval_at else ()

    def on_eval(iteration, images, labels, flags):
        ecfg = prof.eval_config(len(ds.y_train), len(images), ds.image_size)
        return evaluate_on(ds, images, labels, flags, ecfg.with_(augmentation="combined"), runs=1, seed=args.seed,
                           progress=False).as_dict()

    result = distill(ds.normalize(ds.x_train[sel.select_idx]), ds.y_train[sel.select_idx],
                     ds.normalize(ds.x_train[sel.distill_idx]), ds.y_train[sel.distill_idx], args.experts,
                     net["model"], num_classes=ds.num_classes, cfg=cfg, width=net["width"], depth=net["depth"],
                     seed=args.seed, out=args.out, resume=args.resume, eval_at=eval_at, on_eval=on_eval)
    config = {"dataset": ds.name, "source": ds.source, "preset": args.preset, "selection": sel.params,
              "init": args.init, "score": None if args.init == "random" else (args.score or preset.score),
              "distill": config_dict(cfg), "experts": args.experts, "expert_config": experts_cfg,
              "seed": args.seed, "version": __version__}
    out = Path(args.out)
    save_synset(result, out / "synset.npz", sel.indices, config)
    (out / "history.json").write_text(json.dumps(result.history) + "\n")
    _dump({"out": str(out / "synset.npz"), "images": len(result.images), "distilled": int(result.is_distilled.sum()),
           "syn_lr": result.syn_lr, "final_loss": result.history["loss"][-1] if result.history["loss"] else None,
           "evals": {k: v["mean"] for k, v in result.history["evals"].items()}}, None)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="selmatch", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"selmatch {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp, dataset_positional=False):
        if not dataset_positional:
            sp.add_argument("--dataset", required=True, choices=list(DATASETS))
        sp.add_argument("--root", help="torchvision-style data folder (default <cache>/datasets)")
        sp.add_argument("--cache", help="cache root (default $SELMATCH_CACHE or ~/.cache/selmatch)")
        sp.add_argument("--no-download", action="store_true", help="never download")

    def training(sp):
        sp.add_argument("--profile", default="smoke", choices=list(PROFILES), help="compute scale (default smoke)")
        sp.add_argument("--model", choices=list(MODELS), help="override the profile's network")
        sp.add_argument("--width", type=int, help="override the network width")
        sp.add_argument("--epochs", type=int, help="override the number of epochs")
        sp.add_argument("--lr", type=float, help="override the learning rate")
        sp.add_argument("--seed", type=int, default=0)

    def training_set(sp):
        sp.add_argument("--selection", "--set", dest="selection", required=True,
                        help=".npz from `selmatch select` or a synset.npz from `selmatch distill`")
        sp.add_argument("--out", help="output .json")

    d = sub.add_parser("data", help="print a JSON summary of a dataset")
    d.add_argument("name", choices=list(DATASETS))
    common(d, dataset_positional=True)
    d.set_defaults(func=cmd_data)

    s = sub.add_parser("scores", help="record forgetting and EL2N scores while training a network")
    common(s)
    training(s)
    s.add_argument("--el2n-epoch", type=int, default=2, help="epoch after which EL2N is measured (default 2)")
    s.add_argument("--out", required=True, help="output .npz (scores = forgetting, higher = harder)")
    s.set_defaults(func=cmd_scores)

    sl = sub.add_parser("select", help="sliding-window (or random) selection -> select_idx / distill_idx")
    common(sl)
    sl.add_argument("--score", default="cscore", help=f"{' | '.join(SCORE_KINDS)} | path to a hardness file")
    sl.add_argument("--ipc", type=int, required=True, help="images per class")
    sl.add_argument("--beta", type=float, default=0.0, help="window start (see --start)")
    sl.add_argument("--alpha", type=float, default=0.0, help="fraction of the window to distill, in [0, 1]")
    sl.add_argument("--start", default="fraction", choices=START_MODES,
                    help="fraction: start = round(beta * class size) (paper); ipc: int(ipc * beta) (official code)")
    sl.add_argument("--random", action="store_true", help="random class-balanced subset instead")
    sl.add_argument("--seed", type=int, default=0)
    sl.add_argument("--out", required=True, help="output .npz")
    sl.set_defaults(func=cmd_select)

    e = sub.add_parser("evaluate", help="train fresh networks on a selection, report test accuracy")
    common(e)
    training(e)
    training_set(e)
    e.add_argument("--aug", choices=AUGMENTATIONS, help="override the augmentation")
    e.add_argument("--runs", type=int, help="number of runs (default: the profile's)")
    e.add_argument("--test-scores", help=".npz from `selmatch scores`: report easy/hard test halves")
    e.set_defaults(func=cmd_evaluate)

    c = sub.add_parser("coverage", help="coverage of the real training set by a selection in feature space")
    common(c)
    training(c)
    training_set(c)
    c.add_argument("--score", help="split the real images into easy/hard halves by this score")
    c.add_argument("--real", type=int, help="number of real images (class-balanced sample; default: profile's)")
    c.set_defaults(func=cmd_coverage)

    from .presets import PRESETS

    x = sub.add_parser("experts", help="train expert trajectories (parameters after every epoch)")
    common(x)
    x.add_argument("--preset", default="smoke", choices=list(PRESETS), help="network and training (default smoke)")
    x.add_argument("--model", choices=list(MODELS))
    x.add_argument("--width", type=int)
    x.add_argument("--num-experts", type=int)
    x.add_argument("--epochs", type=int)
    x.add_argument("--aug", choices=("none", "dsa"), help="expert augmentation (FACTS §4.2)")
    x.add_argument("--max-per-class", type=int, help="train on a class-balanced subset of this many images per class")
    x.add_argument("--seed", type=int, default=0)
    x.add_argument("--resume", action="store_true", help="continue at the first expert without a file")
    x.add_argument("--out", required=True, help="output folder")
    x.set_defaults(func=cmd_experts)

    t = sub.add_parser("distill", help="SelMatch distillation: trajectory matching with partial update")
    common(t)
    t.add_argument("--experts", required=True, help="folder written by `selmatch experts`")
    t.add_argument("--preset", default="smoke", choices=list(PRESETS), help="hyperparameters (default smoke)")
    t.add_argument("--ipc", type=int)
    t.add_argument("--alpha", type=float)
    t.add_argument("--beta", type=float)
    t.add_argument("--start", choices=START_MODES)
    t.add_argument("--score", help=f"{' | '.join(SCORE_KINDS)} | path (default: the preset's)")
    t.add_argument("--init", default="window", choices=("window", "random"), help="random + --alpha 1 = plain MTT")
    t.add_argument("--iterations", type=int)
    t.add_argument("--syn-steps", type=int)
    t.add_argument("--lr-img", type=float)
    t.add_argument("--memory", choices=("default", "recompute", "constant"),
                   help="recompute: ConvNet's first block recomputed, about half the memory per student step; "
                        "constant: per-step rematerialisation, memory independent of --syn-steps; same gradients")
    t.add_argument("--eval-at", help="comma-separated iterations to evaluate (recorded, never used to choose)")
    t.add_argument("--profile", default="smoke", choices=list(PROFILES), help="evaluation scale for --eval-at")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.pt")
    t.add_argument("--out", required=True, help="output folder (synset.npz, history.json, checkpoint.pt)")
    t.set_defaults(func=cmd_distill)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:  # expected user errors: one clear line, no traceback
        print(f"selmatch {args.command}: error: {e}", file=sys.stderr)
        return 2
