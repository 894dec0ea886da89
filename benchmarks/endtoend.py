"""The whole distillation command against the official ``distill.py``, end to end, in alternating processes.

    python -m benchmarks.endtoend --official DIR [--cases convnet/10 convnet_bn/20 cpu ...] [--reps 2]
                                  [--iterations 7] [--json PATH]

``DIR`` is a clone of https://github.com/Yongalls/SelMatch whose ``utils.py`` imports (it needs kornia,
scipy, einops, pandas and requests: ``pip install --target DEPS ...`` and ``PYTHONPATH=DEPS``). Nothing of it
is copied here. For each case and each repetition, two processes run one after the other (official first in
odd repetitions, ours first in even ones), each timing one side:

* **official**: its ``distill.py`` executed as a script (``runpy``; its own ``argparse`` reads the arguments)
  from inside ``DIR``, so that it finds its ``scores/`` folder. What is replaced: its dataset loader,
  ``utils.get_dataset``, by one that returns this machine's CIFAR-10 (``SELMATCH_DATA``: the same images, in
  the same order, as torchvision's) normalised as its own transform does; the one call of its logging that
  this PyTorch refuses (a norm over three dimensions), answered by ``vector_norm``; and, at a width other than
  its 128, its ``get_network``, by its own ``networks.ConvNet`` at that width. Its evaluation at iteration 0 is
  switched off by its own flag (``--num_eval 0``); it loads every expert before its first iteration
  (``--load_all``, as its own scripts run it).
* **ours**: ``selmatch distill`` (``selmatch.cli.main``) with the same settings.

Both read the same ten expert trajectories of four epochs, trained once per network by ``selmatch``'s expert
training on 500 images in batches of 16 (what the experts learnt does not change the cost of an iteration; start
epochs below 2 keep them short) and written again in the official layout (one ``replay_buffer_0.pt`` of ten, as its
``buffer.py`` writes them). Each process records the time at the end of every iteration through PyTorch's
global optimiser hook (both codes step an SGD optimiser on ``syn_lr`` last in every iteration); its seconds
per iteration are the differences, without the first ``--warmup`` of them (allocator and kernel warm-up).
Its peak memory is the process's maximum resident set size, dataset and experts included.

Cases: ``NETWORK/SYN_STEPS[/WIDTH]`` on the shared settings (:data:`SHARED`: CIFAR-10, IPC 10, alpha 0.5,
beta 0.5 on the C-score window, width 128, DSA in the student, expert_epochs 2, lr_img 1000, lr_lr 1e-5,
lr_init 0.001 (its distill.py's default), a student batch of 125, i.e. the whole 100 images), or ``cpu``: the cpu profile's own shapes
(:data:`NAMED`).

The result, per case: the medians of seconds per iteration with their ranges over every timed iteration of
every process, official over ours (pair by pair: median and range), and both peaks. ``--json`` keeps it (the
performance page renders the committed one).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import runpy
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAMES = {"convnet": "ConvNet", "convnet_bn": "ConvNetBN"}
# What every case shares unless it says otherwise: the settings of the comparison (IPC 10 of CIFAR-10,
# the official width 128, the whole synthetic set per student step).
SHARED = {"width": 128, "batch_syn": 125, "ipc": 10, "alpha": 0.5, "beta": 0.5, "expert_epochs": 2,
          "max_start_epoch": 2, "lr_img": 1000, "lr_lr": 1e-5, "lr_init": 0.001}
# The cpu profile's own shapes (selmatch.settings.CPU: ConvNet width 32, batch 128, 10 steps, lr_init 0.01) at its
# smallest subset (IPC 250, alpha 0.25, the window at 0.6).
NAMED = {"cpu": {"kind": "distill", "network": "convnet", "syn_steps": 10, "width": 32, "batch_syn": 128,
                 "ipc": 250, "alpha": 0.25, "beta": 0.6, "lr_init": 0.01}}
# Evaluation (training a fresh network on a selected set, then testing it), each code's own command: the official
# eval.py on a C-score window against `selmatch evaluate` on the same window, DSA, one run of `epochs` epochs;
# timed per training step (minibatch). At the cpu profile's shapes and at the paper's network (ResNet-18-BN; batch
# 128, its eval.py's default and the paper profile's).
EVAL = {"eval-cpu": {"kind": "evaluate", "model": "convnet", "width": 32, "batch": 128, "lr": 0.03, "ipc": 250,
                     "beta": 0.6, "profile": "cpu", "epochs": 3},
        "eval-paper": {"kind": "evaluate", "model": "resnet18_bn", "width": None, "batch": 128, "lr": 0.1, "ipc": 50,
                       "beta": 0.6, "profile": "paper", "epochs": 3}}
EVAL_NAMES = {"convnet": "ConvNet", "resnet18_bn": "ResNet18BN"}
DEFAULT_CASES = ("convnet/5", "convnet/10", "convnet/20", "convnet_bn/5", "convnet_bn/10", "convnet_bn/20", "cpu",
                 "eval-cpu", "eval-paper")
JSON = ROOT / "benchmarks" / "endtoend.json"
ITERATIONS, WARMUP = 7, 1         # iterations per distillation process, and how many of its timed ones are dropped
# The targets (benchmarks.targets judges the same, from here): on every default-mode case at least this speed-up
# over the official script, in at most this fraction of its peak memory.
TARGET_SPEEDUP, TARGET_MEMORY = 2.0, 0.6
WORK = Path(os.environ.get("TMPDIR", "/tmp")) / "selmatch-endtoend"      # experts and outputs, outside the checkout


def parse_case(text: str) -> dict:
    """``NETWORK/SYN_STEPS[/WIDTH]`` (e.g. ``convnet/10``, ``convnet_bn/20/64``) or a named case (``cpu``): the
    shared settings with those changed."""
    if text in NAMED:
        return {**SHARED, **NAMED[text], "name": text}
    if text in EVAL:
        return {**EVAL[text], "name": text}
    parts = text.split("/")
    if not 2 <= len(parts) <= 3 or parts[0] not in NAMES or not all(p.isdigit() and int(p) >= 1 for p in parts[1:]):
        raise argparse.ArgumentTypeError(f"case {text!r}: expected NETWORK/SYN_STEPS[/WIDTH] with NETWORK one of "
                                         f"{', '.join(NAMES)} and whole numbers >= 1 (e.g. convnet/10), or one of "
                                         f"{', '.join([*NAMED, *EVAL])}")
    case = {**SHARED, "kind": "distill", "network": parts[0], "syn_steps": int(parts[1]), "name": text}
    if len(parts) == 3:
        case["width"] = int(parts[2])
    return case


# ----------------------------------------------------------------------------- one side, in its own process

def _clock(kind: str) -> list[float]:
    """Times at which an optimiser finished a step: for a distillation, the SGD optimiser of one 0-dimensional
    parameter (``syn_lr``: once per iteration); for an evaluation, every step (once per minibatch)."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    marks: list[float] = []

    def hook(opt, args, kwargs):
        if kind == "evaluate" or (len(opt.param_groups) == 1 and len(opt.param_groups[0]["params"]) == 1
                                  and opt.param_groups[0]["params"][0].dim() == 0):
            marks.append(time.perf_counter())

    register_optimizer_step_post_hook(hook)
    return marks


def _local_cifar10():
    """The official ``get_dataset('CIFAR10', ...)`` return value, built from this machine's CIFAR-10."""
    import torch
    from selmatch.data import load_dataset

    ds = load_dataset("cifar10", download=False)

    class Images(torch.utils.data.Dataset):
        """(normalised image, int label) from uint8 pixels, one image at a time, as its torchvision dataset with
        ``ToTensor`` and ``Normalize`` holds and returns them."""

        def __init__(self, x, y):
            self.x, self.y = x, y.tolist()

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            return ds.normalize(self.x[i:i + 1])[0], self.y[i]

    train, test = Images(ds.x_train, ds.y_train), Images(ds.x_test, ds.y_test)
    loader = torch.utils.data.DataLoader(test, batch_size=256, shuffle=False, num_workers=0)
    return 3, (32, 32), 10, list(ds.classes), list(ds.mean), list(ds.std), train, test, loader


def _vector_norms_of_many_dims() -> None:
    """Its logging takes ``torch.linalg.norm(images, dim=(1, 2, 3))`` (the mean image norm it prints), which the
    PyTorch of this project refuses (``dim`` of length 1 or 2 only); the same number is the vector norm over
    those dimensions, so that one call is answered by ``torch.linalg.vector_norm``."""
    import torch

    matrix_or_vector = torch.linalg.norm

    def norm(x, ord=None, dim=None, keepdim=False, **kw):
        if ord is None and isinstance(dim, (tuple, list)) and len(dim) > 2:
            return torch.linalg.vector_norm(x, 2, dim, keepdim, **kw)
        return matrix_or_vector(x, ord, dim, keepdim, **kw)

    torch.linalg.norm = norm


def _official_network(networks, width: int):
    """Its ``get_network`` for ConvNet and ConvNetBN at ``width`` (its own builds them at 128 only), from its own
    ``networks.ConvNet`` class with the arguments its ``get_network`` passes."""
    def get_network(model, channel, num_classes, im_size=(32, 32), dist=True):
        norm = {"ConvNet": "instancenorm", "ConvNetBN": "batchnorm"}[model]
        return networks.ConvNet(channel=channel, num_classes=num_classes, net_width=width, net_depth=3,
                                net_act="relu", net_norm=norm, net_pooling="avgpooling", im_size=im_size)
    return get_network


def _folders(work: Path, case: dict) -> tuple[Path, Path]:
    """Where the experts of ``case``'s network are, for selmatch and (as buffers) for the official script."""
    tag = f"{case['network']}-{case['width']}"
    return work / f"experts-{tag}", work / f"buffers-{tag}"


def run_official(official: Path, work: Path, case: dict, iterations: int) -> None:
    sys.path.insert(0, str(official))
    import utils                                                    # the official module

    utils.get_dataset = lambda dataset, data_path: _local_cifar10()
    if case["width"] != 128:
        import networks                                             # the official module

        utils.get_network = _official_network(networks, case["width"])
    _vector_norms_of_many_dims()
    c = case
    sys.argv = ["distill.py", "--dataset", "CIFAR10", "--device", "cpu", "--model", NAMES[c["network"]],
                "--buffer_path", str(_folders(work, c)[1]), "--save_path", str(work / "official-out"),
                "--Iteration", str(iterations - 1), "--syn_steps", str(c["syn_steps"]), "--batch_syn", str(c["batch_syn"]),
                "--expert_epochs", str(c["expert_epochs"]), "--max_start_epoch", str(c["max_start_epoch"]),
                "--lr_img", str(c["lr_img"]), "--lr_lr", str(c["lr_lr"]), "--lr_init", str(c["lr_init"]),
                "--ipc", str(c["ipc"]), "--alpha", str(c["alpha"]), "--beta", str(c["beta"]), "--load_all",
                "--initialize", "window", "--score", "cscore", "--num_eval", "0"]
    os.chdir(official)
    runpy.run_path(str(official / "distill.py"), run_name="__main__")


def _preset(case: dict) -> str:
    """The ``selmatch distill`` preset whose learning rates and expert segment are the case's (the command line
    sets the rest): the paper's CIFAR settings, or the cpu profile's (lr_init 0.01)."""
    from selmatch.settings import PRESETS

    for name in ("cifar10-ipc250", "cpu"):
        d = PRESETS[name].distill
        if (d.lr_init, d.lr_lr, d.lr_img, d.expert_epochs) == (case["lr_init"], case["lr_lr"], case["lr_img"],
                                                               case["expert_epochs"]):
            return name
    raise ValueError(f"no selmatch preset has lr_init={case['lr_init']}, lr_lr={case['lr_lr']}, "
                     f"lr_img={case['lr_img']}, expert_epochs={case['expert_epochs']}")


def run_ours(work: Path, case: dict, iterations: int) -> None:
    from selmatch.cli import main

    c = case
    rc = main(["distill", "--dataset", "cifar10", "--no-download", "--experts", str(_folders(work, c)[0]),
               "--preset", _preset(c), "--ipc", str(c["ipc"]), "--alpha", str(c["alpha"]), "--beta", str(c["beta"]),
               "--syn-steps", str(c["syn_steps"]), "--iterations", str(iterations), "--batch-syn", str(c["batch_syn"]),
               "--max-start-epoch", str(c["max_start_epoch"]), "--out", str(work / "ours-out"), "--force"])
    if rc:
        raise RuntimeError(f"selmatch distill exited with {rc}")


def _official_eval_network(networks, utils, width: int | None):
    """Its ``get_network``, with ConvNet at ``width`` from its own ``networks.ConvNet`` (its own builds 128)."""
    own = utils.get_network

    def get_network(model, channel, num_classes, im_size=(32, 32), dist=True):
        if model == "ConvNet" and width is not None and width != 128:
            return _official_network(networks, width)(model, channel, num_classes, im_size, dist)
        return own(model, channel, num_classes, im_size, dist)
    return get_network


def run_official_eval(official: Path, work: Path, case: dict, epochs: int) -> None:
    sys.path.insert(0, str(official))
    import networks                                                 # the official modules
    import utils

    utils.get_dataset = lambda dataset, data_path: _local_cifar10()
    utils.get_network = _official_eval_network(networks, utils, case["width"])
    c = case
    sys.argv = ["eval.py", "--dataset", "CIFAR10", "--device", "cpu", "--model", EVAL_NAMES[c["model"]],
                "--method", "window", "--score", "cscore", "--ipc", str(c["ipc"]), "--beta", str(c["beta"]),
                "--aug", "dsa", "--epoch_eval_train", str(epochs - 1), "--lr_net", str(c["lr"]),
                "--batch_train", str(c["batch"]), "--Iteration", "1"]
    os.chdir(official)
    runpy.run_path(str(official / "eval.py"), run_name="__main__")


def run_ours_eval(work: Path, case: dict, epochs: int) -> None:
    from selmatch.cli import main

    from selmatch.settings import get_profile

    c = case
    if get_profile(c["profile"]).eval.batch_size != c["batch"]:
        raise ValueError(f"profile {c['profile']!r} evaluates in batches of {get_profile(c['profile']).eval.batch_size}, "
                         f"not the case's {c['batch']}")
    sel = work / f"window-{c['ipc']}-{c['beta']}.npz"
    if not sel.exists():
        if main(["select", "--dataset", "cifar10", "--no-download", "--score", "cscore", "--ipc", str(c["ipc"]),
                 "--beta", str(c["beta"]), "--out", str(sel)]):
            raise RuntimeError("selmatch select failed")
    width = ["--width", str(c["width"])] if c["width"] else []
    rc = main(["evaluate", "--dataset", "cifar10", "--no-download", "--selection", str(sel), "--profile", c["profile"],
               "--model", c["model"], *width, "--epochs", str(epochs), "--lr", str(c["lr"]), "--aug", "dsa",
               "--runs", "1", "--out", str(work / "ours-eval.json"), "--force"])
    if rc:
        raise RuntimeError(f"selmatch evaluate exited with {rc}")


def side(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.endtoend side")
    p.add_argument("code", choices=["official", "ours"])
    p.add_argument("--official", type=Path)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--case", type=json.loads, required=True, help="the case, as JSON")
    p.add_argument("--iterations", type=int, required=True)
    a = p.parse_args(argv)
    kind = a.case.get("kind", "distill")
    marks = _clock(kind)
    t0 = time.perf_counter()
    out, err = sys.stdout, sys.stderr
    with open(a.work / f"{a.code}.log", "a") as log:                 # their own printing, kept out of the JSON
        sys.stdout = sys.stderr = log
        try:
            if kind == "evaluate" and a.code == "official":
                run_official_eval(a.official, a.work, a.case, a.iterations)
            elif kind == "evaluate":
                run_ours_eval(a.work, a.case, a.iterations)
            elif a.code == "official":
                run_official(a.official, a.work, a.case, a.iterations)
            else:
                run_ours(a.work, a.case, a.iterations)
        finally:
            sys.stdout, sys.stderr = out, err
    if kind == "evaluate" and len(marks) < 3:
        raise RuntimeError(f"{a.code}: {len(marks)} training steps timed; too few")
    if kind == "distill" and len(marks) != a.iterations:
        raise RuntimeError(f"{a.code}: {len(marks)} iterations timed, expected {a.iterations}")
    print(json.dumps({"code": a.code, "iteration_s": [b - c for b, c in zip(marks[1:], marks[:-1])],
                      "first_s": marks[0] - t0, "total_s": time.perf_counter() - t0,
                      "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
    return 0


# ----------------------------------------------------------------------------- the experts both sides read

def prepare(work: Path, case: dict) -> None:
    """Ten experts for ``case``'s network (``selmatch``'s expert training on 500 images, enough epochs for its
    start epochs, each epoch's test accuracy on 10 test images), and the same trajectories in the official
    buffer layout."""
    from dataclasses import replace

    import torch
    from selmatch.artifacts import list_experts, load_trajectory
    from selmatch.data import load_dataset
    from selmatch.experts import ExpertConfig
    from selmatch.pipeline import expert_trajectories

    folder, buffers = _folders(work, case)
    buffer = buffers / "CIFAR10" / NAMES[case["network"]] / "replay_buffer_0.pt"
    if buffer.exists():
        return
    ds = load_dataset("cifar10", download=False)
    ds = replace(ds, x_test=ds.x_test[:10], y_test=ds.y_test[:10])    # the accuracy is not what is timed
    # batches of 16: two epochs are 64 steps, more than a student takes, as with real experts (whose epochs are
    # hundreds of steps); experts of a few large steps make the student overshoot and the matching diverge
    cfg = ExpertConfig(model=case["network"], width=case["width"], num_experts=10, max_per_class=50, batch_size=16,
                       epochs=case["max_start_epoch"] + case["expert_epochs"])
    expert_trajectories(ds, cfg, folder, resume=False, force=True)
    trajectories = []
    for path in list_experts(folder):
        traj = load_trajectory(path, mmap=False)
        trajectories.append([[p.clone() for p in traj.layout.unflatten(row).values()] for row in traj.params])
    buffer.parent.mkdir(parents=True, exist_ok=True)
    torch.save(trajectories, buffer)


# ----------------------------------------------------------------------------- the driver

def _stats(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def _side(code: str, work: Path, official: Path, case: dict, iterations: int, warmup: int) -> dict:
    iterations = case.get("epochs", iterations)             # an evaluation: its own number of epochs
    cmd = [sys.executable, "-m", "benchmarks.endtoend", "side", code, "--work", str(work), "--official", str(official),
           "--case", json.dumps(case), "--iterations", str(iterations)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        raise RuntimeError(f"{code} side of {case} failed (log: {work / (code + '.log')}):\n{r.stderr[-3000:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    # a distillation drops its first `warmup` iterations; an evaluation its first epoch's steps
    skip = warmup if case.get("kind", "distill") == "distill" else -(-len(out["iteration_s"]) // iterations)
    out["timed_s"] = out["iteration_s"][skip:]
    return out


def compare(official: Path, cases: list[dict], reps: int, iterations: int, warmup: int, work: Path) -> list[dict]:
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for case in cases:
        if case.get("kind", "distill") == "distill":
            prepare(work, case)
        runs = {"official": [], "ours": []}
        for rep in range(reps):                                        # A B, B A, A B, ...: drift falls on both
            order = ("official", "ours") if rep % 2 == 0 else ("ours", "official")
            for code in order:
                runs[code].append(_side(code, work, official, case, iterations, warmup))
        off = [s for r in runs["official"] for s in r["timed_s"]]
        ours = [s for r in runs["ours"] for s in r["timed_s"]]
        pairs = [statistics.median(o["timed_s"]) / statistics.median(u["timed_s"])
                 for o, u in zip(runs["official"], runs["ours"])]
        row = {**case, "official_s": _stats(off), "ours_s": _stats(ours), "speedup": _stats(pairs),
               "official_peak_gb": _stats([r["peak_gb"] for r in runs["official"]]),
               "ours_peak_gb": _stats([r["peak_gb"] for r in runs["ours"]]), "runs": runs}
        row["memory_ratio"] = row["ours_peak_gb"]["median"] / row["official_peak_gb"]["median"]
        rows.append(row)
        print(line(row), flush=True)
    return rows


def _fmt(s: dict, digits: int = 2) -> str:
    return f"{s['median']:.{digits}f} [{s['min']:.{digits}f}–{s['max']:.{digits}f}]"


HEADER = (f"{'case':<16} {'official s/iter':>22} {'selmatch s/iter':>22} {'official / ours':>20} "
          f"{'peak GB official':>17} {'peak GB ours':>13}")


def line(row: dict) -> str:
    return (f"{row['name']:<16} {_fmt(row['official_s']):>22} "
            f"{_fmt(row['ours_s']):>22} {_fmt(row['speedup']):>20} {row['official_peak_gb']['median']:>17.2f} "
            f"{row['ours_peak_gb']['median']:>13.2f}")


def _describe(row: dict) -> str:
    if row.get("kind") == "evaluate":
        width = f"-{row['width']}" if row["width"] else ""
        return (f"{EVAL_NAMES[row['model']]}{width}, batch {row['batch']}, a window of IPC {row['ipc']}, DSA"
                + (" (the cpu profile's shapes)" if row["profile"] == "cpu" else " (the paper's network)"))
    net = NAMES[row["network"]]
    return (f"{net}-{row['width']}, {row['syn_steps']} steps, IPC {row['ipc']}, "
            f"batch {min(row['batch_syn'], 10 * row['ipc'])}" + (" (the cpu profile's shapes)" if row.get("name") == "cpu"
                                                                 else ""))




def markdown(result: dict | None, loop: dict | None = None, source: str = "benchmarks/endtoend.json") -> str:
    """The performance page's table of a committed result (``--json``), the verdict against the targets, and,
    given ``loop`` (``python -m benchmarks.profile_unroll --loop ... --json``), where our iteration's time goes
    and the speed-up the official script's time would allow if everything but the convolutions cost nothing."""
    if result is None:
        return (f"*Not measured yet: `{source}` is missing. `make bench OFFICIAL=<clone of Yongalls/SelMatch>` "
                "measures it.*\n")
    rows = [r for r in result["rows"] if r.get("kind", "distill") == "distill"]
    evals = [r for r in result["rows"] if r.get("kind") == "evaluate"]
    dates = sorted({r.get("date", result["date"])[:10] for r in result["rows"]})
    lines = [f"Measured {' to '.join(dict.fromkeys([dates[0], dates[-1]]))} on {result['cpu']} ({result['threads']} "
             f"threads, torch {result['torch']}), {result['reps']} processes per side and case, alternating. "
             "Distillation: seconds per iteration (the first of each process dropped); evaluation: seconds per "
             "training step (minibatch; the first epoch dropped); each as median [min–max] over every timed one of "
             "every process, the speed-up as the median [min–max] of the pairs' ratios of medians; peak = the "
             f"process's maximum resident memory, dataset and experts included (source: `{source}`).", "",
             "| distillation | official `distill.py`, s/iter | `selmatch distill`, s/iter | speed-up | peak GB, "
             "official | peak GB, ours | ours / official memory |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {_describe(r)} | {_fmt(r['official_s'])} | {_fmt(r['ours_s'])} | {_fmt(r['speedup'])}× | "
                     f"{r['official_peak_gb']['median']:.2f} | {r['ours_peak_gb']['median']:.2f} | "
                     f"{r['memory_ratio']:.2f} |")
    if evals:
        lines += ["", "| evaluation | official `eval.py`, s/step | `selmatch evaluate`, s/step | speed-up | peak GB, "
                      "official | peak GB, ours |", "|---|---|---|---|---|---|"]
        for r in evals:
            lines.append(f"| {_describe(r)} | {_fmt(r['official_s'], 3)} | {_fmt(r['ours_s'], 3)} | "
                         f"{_fmt(r['speedup'])}× | {r['official_peak_gb']['median']:.2f} | "
                         f"{r['ours_peak_gb']['median']:.2f} |")
    judged = [r for r in rows if r.get("name") in DEFAULT_CASES and r.get("name") != "cpu"]
    fast = [r for r in judged if r["speedup"]["median"] >= TARGET_SPEEDUP]
    small = [r for r in judged if r["memory_ratio"] <= TARGET_MEMORY]
    lines += ["", f"Targets (the six default-mode cases): at least {TARGET_SPEEDUP:g}× the official speed — met in "
                  f"{len(fast)} of {len(judged)}; at most {TARGET_MEMORY:g}× its peak memory — met in {len(small)} of "
                  f"{len(judged)}."]
    if loop:
        lines += ["", f"Where our iteration's time goes (`python -m benchmarks.profile_unroll --loop`, one whole "
                      f"`distill()` iteration under `torch.profiler`, {loop['date'][:10]}, {loop['cpu']}):", "",
                  "| case | s/iter (profiled) | convolutions, s | everything else, s | convolutions' share | "
                  "forward convolutions, GFLOP/s | official s/iter over our convolutions' s |",
                  "|---|---|---|---|---|---|---|"]
        for p in loop["rows"]:
            match = [r for r in rows if (r["network"], r["syn_steps"], r["width"]) ==
                     (p["network"], p["syn_steps"], p["width"]) and r["ipc"] == SHARED["ipc"]]
            ceiling = f"{match[0]['official_s']['median'] / p['convolution_s']:.2f}×" if match else "–"
            rate = f"{p['forward_conv_gflops']:.0f}" if p.get("forward_conv_gflops") else "–"
            lines.append(f"| {NAMES[p['network']]}-{p['width']}, {p['syn_steps']} steps | {p['profiled_s']:.2f} | "
                         f"{p['convolution_s']:.2f} | {p['other_s']:.2f} | {p['convolution_s'] / p['profiled_s']:.0%} | "
                         f"{rate} | {ceiling} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["side"]:
        return side(argv[1:])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--official", type=Path, default=os.environ.get("SELMATCH_OFFICIAL") or None,
                   help="a clone of github.com/Yongalls/SelMatch (default $SELMATCH_OFFICIAL)")
    p.add_argument("--cases", nargs="+", type=parse_case, default=[parse_case(c) for c in DEFAULT_CASES],
                   help=f"NETWORK/SYN_STEPS[/WIDTH] or {' or '.join(NAMED)} (default: {' '.join(DEFAULT_CASES)})")
    p.add_argument("--reps", type=int, default=2, help="processes per side and case (default 2)")
    p.add_argument("--iterations", type=int, default=ITERATIONS,
                   help=f"iterations per process (default {ITERATIONS})")
    p.add_argument("--warmup", type=int, default=WARMUP, help=f"timed differences dropped per process (default {WARMUP})")
    p.add_argument("--work", type=Path, default=WORK, help=f"folder for the experts and both outputs (default {WORK})")
    p.add_argument("--json", type=Path, default=JSON, help=f"where the result goes (default {JSON.relative_to(ROOT)})")
    a = p.parse_args(argv)
    if a.official is None or not (a.official / "distill.py").exists():
        p.error(f"--official={a.official}: expected a clone of github.com/Yongalls/SelMatch (its distill.py)")
    if a.reps < 1:
        p.error(f"--reps={a.reps} must be >= 1")
    if not a.warmup + 2 <= a.iterations:
        p.error(f"--iterations={a.iterations} must be at least --warmup + 2 = {a.warmup + 2} (one timed iteration)")
    a.work.mkdir(parents=True, exist_ok=True)
    import torch

    cpu = _cpu_name()
    print(f"{cpu}; torch {torch.__version__}, {torch.get_num_threads()} threads; {a.reps} process(es) per side and "
          f"case, alternating, {a.iterations - 1 - a.warmup} timed iterations each: median [min–max]")
    print(HEADER, flush=True)
    rows = compare(a.official, a.cases, a.reps, a.iterations, a.warmup, a.work)
    write(a.json, rows, a.reps, a.iterations, a.warmup)
    print(f"written {a.json}")
    return 0


def write(path: Path, rows: list[dict], reps: int, iterations: int, warmup: int) -> None:
    """Write ``rows`` to ``path``; rows of other cases already there, measured on the same CPU, are kept (a
    case measured again replaces its row)."""
    import torch

    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    rows = [{**r, "date": now} for r in rows]
    kept = []
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("cpu") == _cpu_name():
            names = {r["name"] for r in rows}
            kept = [{"date": old["date"], **r} for r in old["rows"] if r.get("name") not in names]
    order = {name: i for i, name in enumerate(DEFAULT_CASES)}
    merged = sorted(kept + rows, key=lambda r: order.get(r.get("name"), len(order)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"date": now, "cpu": _cpu_name(), "threads": torch.get_num_threads(),
                                "torch": torch.__version__, "python": platform.python_version(), "shared": SHARED,
                                "named": NAMED, "evaluation": EVAL, "reps": reps, "iterations": iterations,
                                "warmup": warmup, "rows": merged}, indent=1) + "\n")


def _cpu_name() -> str:
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                return text.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    raise SystemExit(main())
