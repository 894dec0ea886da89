"""The ``selmatch`` command line. Each subcommand is a thin wrapper over :mod:`selmatch.pipeline` (the
same steps the book's cached units run, with one evaluation protocol); outputs are files
(:mod:`selmatch.artifacts`). Every computing subcommand takes ``--device``.

    selmatch data NAME                      JSON summary of a dataset
    selmatch scores   --dataset D --out F   forgetting / EL2N scores recorded while training a network
    selmatch select   --dataset D --score S --ipc N --beta B --alpha A --out F.npz
    selmatch experts  --dataset D --out DIR                 expert trajectories (one file per expert)
    selmatch distill  --dataset D --experts DIR --out DIR   SelMatch distillation -> DIR/synset.npz
    selmatch evaluate --dataset D --selection F.npz         F: a selection or a synset.npz
    selmatch coverage --dataset D --selection F.npz
    selmatch rerun    NOTEBOOK --profile P                 one page of the book, into rerun-P/ (papermill)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, fields, replace
from pathlib import Path

import torch

from . import __version__, cluster, pipeline
from .artifacts import (atomic_write, differences, list_experts, load_score_record, load_synset, make_folder,
                        save_score_record, save_selection, save_synset)
from .augment import AUGMENTATIONS
from .data import DATASETS, load_dataset
from .distill import MEMORY_MODES, DistillationDiverged, DistillConfig, check_experts
from .device import provenance, resolve_device
from .experts import ExpertConfig
from .networks import MODELS
from .scores import SCORE_KINDS, find_score_file, load_scores
from .select import START_MODES
from .settings import PRESETS, PROFILES, get_preset, get_profile


def _dump(obj: dict, out: str | None) -> None:
    """Print the result, then write it: a failing write never loses what was computed."""
    text = json.dumps(obj, indent=2)
    print(text, flush=True)
    if out:
        atomic_write(out, lambda p: p.write_text(text + "\n"))


def _claim_file(out: str | None, force: bool) -> None:
    """Before any work: ``--out`` must not hold an earlier result (unless ``--force``) and must be writable."""
    if not out:
        return
    path = Path(out)
    if path.is_dir():
        raise ValueError(f"--out {path} is a folder; give a file name")
    if path.exists() and not force:
        raise ValueError(f"--out {path} exists; pass --force to replace it, or choose another name")
    _writable(path.parent)


def _claim_folder(out: str, files: tuple[str, ...], resume: bool, force: bool) -> list[Path]:
    """Before any work: a run folder holding an earlier run is refused unless ``--resume`` (continue it: the
    run checks that it is the same) or ``--force`` (replace it). Returns the files ``--force`` is to remove,
    which the caller removes (:func:`_clear`) only once the whole command has been checked."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out {path} is a file, not a folder")
    held = [f for f in files if (path / f).exists()]
    if held and not resume and not force:
        raise ValueError(f"--out {path} holds an earlier run ({', '.join(held)}); pass --resume to continue it, "
                         "--force to replace it, or choose another folder")
    _writable(path)
    return [path / f for f in held] if force else []


def _clear(files: list[Path]) -> None:
    for f in files:
        f.unlink(missing_ok=True)


def _writable(folder: Path) -> None:
    make_folder(folder)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write in {folder} (permission denied); choose another --out")


def _iterations(text: str) -> tuple[int, ...]:
    """``--eval-at 0,500,1000``: distillation iterations (argparse names the argument on failure)."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of iterations, e.g. 0,500,1000") \
            from None
    if min(values) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: iterations must be >= 0")
    return values


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
    _claim_file(args.out, args.force)
    ds = _load(args)
    cfg = _train_cfg(get_profile(args.profile).scores, args)
    t0 = time.perf_counter()
    rec = pipeline.difficulty_scores(ds, cfg, seed=args.seed, el2n_epoch=args.el2n_epoch, device=args.device,
                                     progress=True)
    params = {"dataset": ds.name, "source": ds.source, "profile": args.profile, "seed": args.seed,
              "train": asdict(cfg), "el2n_epoch": rec.el2n_epoch, "seconds": time.perf_counter() - t0,
              **provenance(args.device), "version": __version__}
    _dump({"out": args.out, **params, "final_train_acc": rec.train_history[-1].double().mean().item() * 100}, None)
    save_score_record(args.out, {"scores": rec.forgetting_train.numpy(), "labels": ds.y_train.numpy(),
                                 "forgetting_test": rec.forgetting_test.numpy(), "el2n": rec.el2n_train.numpy(),
                                 "train_history": rec.train_history.numpy(), "test_history": rec.test_history.numpy()},
                      params)
    return 0


def cmd_select(args) -> int:
    _claim_file(args.out, args.force)
    ds = _load(args)
    hardness = None if args.random else load_scores(ds, args.score, cache=args.cache, download=not args.no_download)
    sel = pipeline.initial_selection(ds, init="random" if args.random else "window", ipc=args.ipc, alpha=args.alpha,
                                     beta=args.beta, hardness=hardness, start_mode=args.start, seed=args.seed)
    extra = {"dataset": ds.name, "score": None if args.random else str(args.score), "version": __version__}
    save_selection(sel, args.out, **extra)
    summary = {"out": args.out, **sel.params, **extra, "n_select": len(sel.select_idx),
               "n_distill": len(sel.distill_idx)}
    if sel.scores is not None:
        summary["mean_hardness_window"] = sel.scores[sel.indices].mean().item()
        summary["mean_hardness_all"] = sel.scores.mean().item()
    _dump(summary, None)
    return 0


def cmd_evaluate(args) -> int:
    _claim_file(args.out, args.force)
    ds = _load(args)
    x, y, distilled, params = pipeline.training_set(ds, args.selection)
    prof = get_profile(args.profile)
    cfg = _train_cfg(prof.eval_config(len(ds.y_train), len(x), ds.image_size), args)
    test_hardness = torch.from_numpy(load_score_record(args.test_scores)["forgetting_test"]) \
        if args.test_scores else None
    res = pipeline.evaluate_set(ds, x, y, distilled, prof, runs=args.runs, seed=args.seed, train_config=cfg,
                                test_hardness=test_hardness, device=args.device, progress=True)
    out = {"dataset": ds.name, "profile": args.profile, "selection": args.selection, "selection_params": params,
           "n_distilled": int(distilled.sum()), "train": asdict(cfg), "seed": args.seed, **res,
           **provenance(args.device), "version": __version__}
    _dump(out, args.out)
    print(f"test accuracy (test half, n={len(res['runs'])} runs): {res['mean']:.2f} ± {res['std']:.2f} %; "
          f"validation half {res['val']:.2f} %", file=sys.stderr)
    return 0


def cmd_coverage(args) -> int:
    _claim_file(args.out, args.force)
    ds = _load(args)
    x_syn, _, _, _ = pipeline.training_set(ds, args.selection)
    prof = get_profile(args.profile)
    cfg = _train_cfg(prof.features, args)
    net = pipeline.feature_network(ds, cfg, seed=args.seed, device=args.device, progress=True)
    hardness = load_scores(ds, args.score, cache=args.cache) if args.score else None
    n_real = args.real if args.real is not None else prof.coverage_real
    probe = pipeline.CoverageProbe(ds, net, n_real=n_real, seed=args.seed, hardness=hardness)
    out = {"dataset": ds.name, "profile": args.profile, "selection": args.selection, "n_real": len(probe.real_idx),
           "n_synthetic": len(x_syn), "feature_net": asdict(cfg), "score": args.score, **provenance(args.device),
           "version": __version__, **probe(x_syn)}
    _dump(out, args.out)
    return 0


def _setting(args, ds, ipc=None):
    """The experts and distillation of ``--preset`` (default: the ``--profile``'s) for this dataset."""
    return get_preset(args.preset or getattr(args, "profile", None) or "smoke", ds.name, ds.image_size, ipc)


def cmd_experts(args) -> int:
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise ValueError(f"--out {args.out} is a file, not a folder")
    _writable(Path(args.out))
    ds = _load(args)
    changes = {k: v for k, v in (("model", args.model), ("width", args.width), ("num_experts", args.num_experts),
                                 ("epochs", args.epochs), ("augmentation", args.aug),
                                 ("max_per_class", args.max_per_class)) if v is not None}
    cfg = replace(_setting(args, ds).expert, **changes)
    t0 = time.perf_counter()
    out = pipeline.expert_trajectories(ds, cfg, args.out, seed=args.seed, device=args.device, resume=args.resume,
                                       force=args.force,
                                       progress=True, extra={"source": ds.source, "preset": args.preset,
                                                             **provenance(args.device), "version": __version__})
    _dump({"out": str(out), "experts": len(list_experts(out)), "seconds": time.perf_counter() - t0,
           "expert": asdict(cfg)}, None)
    return 0


def _same_finished_run(synset: Path, record: dict) -> None:
    """``--resume`` into a folder whose run has finished: continue only the same run (its synset's record equal
    to this one's in everything that changes the images, and no fewer iterations), never replace another one."""
    if not synset.exists():
        return
    held = load_synset(synset).config or {}
    # every DistillConfig field that changes the images but the length (a field a record lacks: its default)
    numbers = {f.name: f.default for f in fields(DistillConfig) if f.name not in ("iterations", "memory",
                                                                                   "checkpoint_every")}

    def part(rec: dict) -> dict:
        distill = rec.get("distill") or {}
        return {**{k: rec.get(k) for k in ("dataset", "selection", "init", "score", "expert_config", "seed")},
                "distill": {k: distill.get(k, default) for k, default in numbers.items()}}
    diff = differences(part(held), part(record))
    done, asked = (held.get("distill") or {}).get("iterations"), record["distill"]["iterations"]
    if isinstance(done, int) and asked < done:      # continuing to more iterations is what --resume is for
        diff.append(f"distill.iterations: {done} -> {asked}")
    if diff:
        raise ValueError(f"{synset} holds a finished run of another configuration ({'; '.join(diff[:4])}); "
                         f"--resume never replaces it: move {synset.name} aside, or choose another --out")


def cmd_distill(args) -> int:
    replaced = _claim_folder(args.out, ("synset.npz", "history.json", "checkpoint.pt"), args.resume, args.force)
    ds = _load(args)
    experts_file = Path(args.experts) / "config.json"
    if not experts_file.exists():
        raise FileNotFoundError(f"{experts_file} is missing; train experts with `selmatch experts --out {args.experts}`")
    experts_cfg = json.loads(experts_file.read_text())
    setting = _setting(args, ds, args.ipc)
    ipc, alpha, beta = (v if v is not None else d for v, d in ((args.ipc, setting.ipc), (args.alpha, setting.alpha),
                                                               (args.beta, setting.beta)))
    score = args.score or setting.score
    hardness = load_scores(ds, score, cache=args.cache, download=not args.no_download) if args.init == "window" else None
    sel = pipeline.initial_selection(ds, init=args.init, ipc=ipc, alpha=alpha, beta=beta, hardness=hardness,
                                     start_mode=args.start or setting.start_mode, seed=args.seed)
    changes = {k: v for k, v in (("iterations", args.iterations), ("syn_steps", args.syn_steps),
                                 ("lr_img", args.lr_img), ("batch_syn", args.batch_syn),
                                 ("max_start_epoch", args.max_start_epoch), ("memory", args.memory)) if v is not None}
    # the network is the experts' own, so the two always match
    setting = replace(setting, expert=ExpertConfig(**experts_cfg["expert"]), distill=replace(setting.distill, **changes))
    prof = get_profile(args.profile)
    pipeline.check_experts_dataset(ds, args.experts)
    check_experts(args.experts, setting.expert.model, num_classes=ds.num_classes, image_shape=ds.image_shape,
                  cfg=setting.distill, width=setting.expert.width, depth=setting.expert.depth)
    record = {"dataset": ds.name, "selection": sel.params, "init": args.init,
              "score": None if args.init == "random" else score, "distill": asdict(setting.distill),
              "expert_config": experts_cfg, "seed": args.seed}
    if args.resume and not replaced:
        _same_finished_run(Path(args.out) / "synset.npz", record)
    _clear(replaced)                 # --force: only now, with the whole command checked
    result = pipeline.distill_selection(ds, sel, args.experts, setting, seed=args.seed, device=args.device,
                                        out=args.out, resume=args.resume, keep_at=tuple(args.eval_at or ()),
                                        progress=True)
    evals = {str(it): pipeline.evaluate_set(ds, torch.cat([result.images[~result.is_distilled], x_it]), result.labels,
                                            result.is_distilled, prof, augmentation="combined", runs=1,
                                            seed=args.seed, device=args.device)
             for it, x_it in result.snapshots.items()}
    config = {**record, "source": ds.source, "preset": args.preset, "profile": args.profile, "experts": args.experts,
              **provenance(args.device), "version": __version__}
    out = Path(args.out)
    save_synset(out / "synset.npz", result.images, result.labels, result.is_distilled, sel.indices, result.syn_lr,
                config)
    atomic_write(out / "history.json", lambda p: p.write_text(json.dumps({**result.history, "evals": evals}) + "\n"))
    _dump({"out": str(out / "synset.npz"), "images": len(result.images), "distilled": int(result.is_distilled.sum()),
           "syn_lr": result.syn_lr, "final_loss": result.history["loss"][-1] if result.history["loss"] else None,
           "evals": {k: v["mean"] for k, v in evals.items()}}, None)
    return 0


# ----------------------------------------------------------------------------- the parser

def _common(sp, dataset_positional=False) -> None:
    if not dataset_positional:
        sp.add_argument("--dataset", required=True, choices=list(DATASETS))
    sp.add_argument("--root", help="torchvision-style data folder (default <cache>/datasets)")
    sp.add_argument("--cache", help="cache root (default $SELMATCH_CACHE or ~/.cache/selmatch)")
    sp.add_argument("--no-download", action="store_true", help="never download")


def _device(sp) -> None:
    sp.add_argument("--device", default="cpu", help="where to compute: cpu, cuda, cuda:1, mps (default cpu)")
    _ray(sp)


def _ray(sp) -> None:
    sp.add_argument("--ray", action="store_true",
                    help="run independent work (experts, evaluation runs, a page's units) as Ray tasks: "
                         "SELMATCH_RAY=auto (a local Ray) unless SELMATCH_RAY names a cluster; needs selmatch[ray]")


def _training(sp) -> None:
    sp.add_argument("--profile", default="smoke", choices=list(PROFILES), help="compute scale (default smoke)")
    sp.add_argument("--model", choices=list(MODELS), help="override the profile's network")
    sp.add_argument("--width", type=int, help="override the network width")
    sp.add_argument("--epochs", type=int, help="override the number of epochs")
    sp.add_argument("--lr", type=float, help="override the learning rate")
    sp.add_argument("--seed", type=int, default=0)
    _device(sp)


def _force(sp, what: str = "an existing --out file") -> None:
    sp.add_argument("--force", action="store_true", help=f"replace {what} (refused otherwise)")


def _training_set(sp) -> None:
    sp.add_argument("--selection", "--set", dest="selection", required=True,
                    help=".npz from `selmatch select` or a synset.npz from `selmatch distill`")
    sp.add_argument("--out", help="output .json")
    _force(sp)


def _add_data(sub) -> None:
    d = sub.add_parser("data", help="print a JSON summary of a dataset")
    d.add_argument("name", choices=list(DATASETS))
    _common(d, dataset_positional=True)
    d.set_defaults(func=cmd_data)


def _add_scores(sub) -> None:
    s = sub.add_parser("scores", help="record forgetting and EL2N scores while training a network")
    _common(s)
    _training(s)
    s.add_argument("--el2n-epoch", type=int, default=2, help="epoch after which EL2N is measured (default 2)")
    s.add_argument("--out", required=True, help="output .npz (scores = forgetting, higher = harder)")
    _force(s)
    s.set_defaults(func=cmd_scores)


def _add_select(sub) -> None:
    sl = sub.add_parser("select", help="sliding-window (or random) selection -> select_idx / distill_idx")
    _common(sl)
    sl.add_argument("--score", default="cscore", help=f"{' | '.join(SCORE_KINDS)} | path to a hardness file")
    sl.add_argument("--ipc", type=int, required=True, help="images per class")
    sl.add_argument("--beta", type=float, default=0.0, help="window start (see --start)")
    sl.add_argument("--alpha", type=float, default=0.0, help="fraction of the window to distill, in [0, 1]")
    sl.add_argument("--start", default="fraction", choices=START_MODES,
                    help="fraction: start = round(beta * class size) (paper); ipc: int(ipc * beta) (official code)")
    sl.add_argument("--random", action="store_true", help="random class-balanced subset instead")
    sl.add_argument("--seed", type=int, default=0)
    sl.add_argument("--out", required=True, help="output .npz")
    _force(sl)
    sl.set_defaults(func=cmd_select)


def _add_evaluate(sub) -> None:
    e = sub.add_parser("evaluate", help="train fresh networks on a selection, report test accuracy "
                                        "(the book's protocol: mean ± std on the test half, val on the other)")
    _common(e)
    _training(e)
    _training_set(e)
    e.add_argument("--aug", choices=AUGMENTATIONS, help="override the augmentation")
    e.add_argument("--runs", type=int, help="number of runs (default: the profile's)")
    e.add_argument("--test-scores", help=".npz from `selmatch scores`: report easy/hard test halves")
    e.set_defaults(func=cmd_evaluate)


def _add_coverage(sub) -> None:
    c = sub.add_parser("coverage", help="coverage of the real training set by a selection in feature space")
    _common(c)
    _training(c)
    _training_set(c)
    c.add_argument("--score", help="split the real images into easy/hard halves by this score")
    c.add_argument("--real", type=int, help="number of real images (class-balanced sample; default: profile's)")
    c.set_defaults(func=cmd_coverage)


def _add_experts(sub) -> None:
    x = sub.add_parser("experts", help="train expert trajectories (parameters after every epoch)")
    _common(x)
    x.add_argument("--preset", default="smoke", choices=list(PRESETS),
                   help="a profile (its experts, fitted to the dataset's image size) or a paper setting (default smoke)")
    x.add_argument("--model", choices=list(MODELS))
    x.add_argument("--width", type=int)
    x.add_argument("--num-experts", type=int)
    x.add_argument("--epochs", type=int)
    x.add_argument("--aug", choices=("none", "dsa"), help="expert augmentation (the paper's code: none; MTT: dsa)")
    x.add_argument("--max-per-class", type=int, help="train on a class-balanced subset of this many images per class")
    x.add_argument("--seed", type=int, default=0)
    x.add_argument("--resume", action="store_true",
                   help="continue at the first expert without a file (the folder's config must match)")
    _force(x, "the experts an --out folder holds")
    _device(x)
    x.add_argument("--out", required=True, help="output folder")
    x.set_defaults(func=cmd_experts)


def _add_distill(sub) -> None:
    t = sub.add_parser("distill", help="SelMatch distillation: trajectory matching with partial update")
    _common(t)
    t.add_argument("--experts", required=True, help="folder written by `selmatch experts`")
    t.add_argument("--preset", choices=list(PRESETS),
                   help="a profile's distillation or a paper setting (default: the --profile's; at paper, the "
                        "official setting for the dataset and --ipc)")
    t.add_argument("--ipc", type=int)
    t.add_argument("--alpha", type=float)
    t.add_argument("--beta", type=float)
    t.add_argument("--start", choices=START_MODES)
    t.add_argument("--score", help=f"{' | '.join(SCORE_KINDS)} | path (default: the preset's)")
    t.add_argument("--init", default="window", choices=pipeline.INITS, help="random + --alpha 1 = plain MTT")
    t.add_argument("--iterations", type=int)
    t.add_argument("--syn-steps", type=int)
    t.add_argument("--lr-img", type=float)
    t.add_argument("--batch-syn", type=int, help="images per student step (default: the preset's)")
    t.add_argument("--max-start-epoch", type=int,
                   help="start epochs are drawn below this (default: the preset's; the experts need this + "
                        "expert_epochs - 1 epochs)")
    t.add_argument("--memory", choices=MEMORY_MODES,
                   help="recompute: ConvNet's first block recomputed, about half the memory per student step; "
                        "constant: per-step rematerialisation, memory independent of --syn-steps; same gradients")
    t.add_argument("--eval-at", type=_iterations,
                   help="comma-separated iterations to evaluate (recorded, never used to choose)")
    t.add_argument("--profile", default="smoke", choices=list(PROFILES),
                   help="compute scale: the default --preset and the evaluations of --eval-at (default smoke)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--resume", action="store_true",
                   help="continue from DIR/checkpoint.pt (refused if it belongs to another run)")
    _force(t, "the run an --out folder holds")
    _device(t)
    t.add_argument("--out", required=True, help="output folder (synset.npz, history.json, checkpoint.pt)")
    t.set_defaults(func=cmd_distill)


def cmd_rerun(args) -> int:
    from .companion.book import rerun

    out = rerun(args.notebook, profile=args.profile, params=args.params, set_=args.set, device=args.device,
                into=args.into, prepare_only=args.prepare_only, reuse=args.reuse, force=args.force)
    print(f"{'prepared' if args.prepare_only else 'executed'}: {out}")
    return 0


def _add_rerun(sub) -> None:
    r = sub.add_parser("rerun", help="execute one page of the book with papermill into a separate folder",
                       description="Execute one notebook of the book at a profile, with the page's own parameters "
                                   "(notebooks/params/NAME.PROFILE.yaml) or yours. Results, expert trajectories and "
                                   "distillation checkpoints go to DIR/results and DIR/runs (DIR: --into, default "
                                   "rerun-PROFILE), apart from the committed results; the executed notebook to "
                                   "DIR/NAME.ipynb. Anything not cached needs the data (see `selmatch data`).")
    r.add_argument("notebook", help="e.g. 05_main_results or 05")
    r.add_argument("--profile", help="smoke | cpu | lesson | paper (default: the params file's, else cpu)")
    r.add_argument("--params", help="a YAML file of parameters (default: the page's at the profile)")
    r.add_argument("-p", dest="set", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="set one parameter; VALUE is YAML: -p ipcs \"[50, 100]\" (repeatable)")
    r.add_argument("--device", help="cpu | cuda | cuda:N | mps (default: the notebook's, cpu)")
    _ray(r)
    r.add_argument("--into", help="folder for the results, runs and executed notebook (default rerun-PROFILE)")
    r.add_argument("--force", action="store_true",
                   help="overwrite an executed notebook already in --into (its results are kept and reused)")
    r.add_argument("--reuse", action="store_true",
                   help="start from a copy of the committed results of the profile: compute only what they lack")
    r.add_argument("--prepare-only", action="store_true",
                   help="write the notebook with its parameters injected, without executing it")
    r.set_defaults(func=cmd_rerun)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="selmatch", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"selmatch {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for add in (_add_data, _add_scores, _add_select, _add_evaluate, _add_coverage, _add_experts, _add_distill,
                _add_rerun):
        add(sub)
    return p


_OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError   # torch < 2.5: cuda's


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "resume", False) and getattr(args, "force", False):
        print(f"selmatch {args.command}: error: --resume continues a run and --force replaces it; pass one",
              file=sys.stderr)
        return 2
    if getattr(args, "ray", False) and not os.environ.get("SELMATCH_RAY"):
        os.environ["SELMATCH_RAY"] = "auto"          # read by selmatch.cluster here and in a rerun's kernel
    try:
        if getattr(args, "device", None) is not None and not getattr(args, "prepare_only", False):
            resolve_device(args.device)          # a device this machine lacks fails before any work
        if hasattr(args, "ray") and cluster.enabled() and not getattr(args, "prepare_only", False):
            cluster.ray_module()                 # Ray asked for but missing or unreachable: before anything is written
        return args.func(args)
    except (ValueError, OSError, DistillationDiverged) as e:  # expected failures: one line, no traceback
        print(f"selmatch {args.command}: error: {e}", file=sys.stderr)
        return 2
    except _OUT_OF_MEMORY as e:
        print(f"selmatch {args.command}: error: out of memory on {args.device} ({str(e).splitlines()[0][:120]}); "
              "for distill, --memory constant keeps memory independent of --syn-steps", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"selmatch {args.command}: interrupted; long runs continue with --resume", file=sys.stderr)
        return 130
