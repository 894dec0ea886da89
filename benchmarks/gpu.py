"""The paper's settings on a GPU: one prepared check that answers "how much memory and time does a setting
need?" and checks that the device computes what the CPU computes.

    PYTHONPATH=. python -m benchmarks.gpu --device cuda            # about 5 minutes on one modern GPU
    python -m benchmarks.gpu --device cpu --tiny --out /tmp/gpu      # seconds: what the test suite runs

It needs no dataset (random images of the right shapes time the same work) and nothing beyond torch, numpy
and tqdm. It writes ``<out>/<device>-<date>.json`` and the same figures as a markdown table (``.md``):

* **equivalence** -- for a small case, the matching loss, the image gradient and the ``syn_lr`` gradient on the
  device against the CPU, in all three memory modes, TF32 off: relative errors.
* **cost per paper setting** -- CIFAR-10 IPC 250/500/1000/1500, CIFAR-100 IPC 50/100, TinyImageNet IPC 50/100
  (ConvNetD4BN, 64x64): seconds per distillation iteration at the official ``syn_steps`` (55; Tiny 20) and
  batch 125, in the default and constant-memory modes, with peak device memory, timed through
  ``selmatch.distill.distill`` itself (expert trajectories of random parameters); seconds per expert epoch
  (ConvNetBN-128 on 50,000 images, batch 256; Tiny: ConvNetD4BN on 100,000); ResNet-18-BN evaluation images
  per second at batch 128 (combined augmentation).
* **the paper's full cost**, extrapolated per setting: GPU-hours for 100 experts x 100 epochs, 10,000
  distillation iterations (default mode) and 5 evaluations at the official epochs.

``--budget-s`` stops starting new measurements once that much time has passed (what was skipped is
recorded), so a short lease of a GPU always ends with a JSON file.
"""
from __future__ import annotations

import argparse
import copy
import datetime as _dt
import json
import platform
import re
import resource
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from selmatch.artifacts import Trajectory
from selmatch.device import resolve_device
from selmatch.distill import MEMORY_MODES, distill, matching_gradients
from selmatch.networks import build_model
from selmatch.settings import paper_setting
from selmatch.student import ParamLayout, flatten, minibatches
from selmatch.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = [("cifar10", 250), ("cifar10", 500), ("cifar10", 1000), ("cifar10", 1500), ("cifar100", 50),
            ("cifar100", 100), ("tinyimagenet", 50), ("tinyimagenet", 100)]
SHAPES = {"cifar10": (10, 32, 50_000), "cifar100": (100, 32, 50_000), "tinyimagenet": (200, 64, 100_000)}
PAPER_RUN = {"experts": 100, "expert_epochs": 100, "iterations": 10_000, "evaluations": 5}


# ----------------------------------------------------------------------------- measuring

def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_gb(device: torch.device) -> float:
    """Peak device memory since :func:`reset_peak` (on the CPU: the process's peak resident set, which never
    resets, so only an upper bound)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


@contextmanager
def no_tf32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


# ----------------------------------------------------------------------------- equivalence

def _matching(model, layout, start, target, x_sel, x_dis0, y, lr0, batches, seed, memory, device):
    """(loss, image gradient, syn_lr gradient) of one matching step on ``device``."""
    model = copy.deepcopy(model).to(device)
    model.recompute_blocks = int(memory == "recompute")
    g = torch.Generator().manual_seed(seed)                      # augmentation draws: the same on every device
    start, target, x_sel, y = start.to(device), target.to(device), x_sel.to(device), y.to(device)
    batches = [b.to(device) for b in batches]
    lr = torch.tensor(lr0, device=device, requires_grad=True)
    x_dis = x_dis0.to(device).requires_grad_(memory != "constant")
    return matching_gradients(memory, model, layout, start, target, x_sel, x_dis, y, lr, batches, g, "dsa")


def equivalence(device: torch.device, tiny: bool) -> dict:
    """The device against the CPU on one small matching step, per memory mode (TF32 off)."""
    torch.manual_seed(0)
    width, n, steps = (8, 24, 3) if tiny else (64, 100, 10)
    model = build_model("convnet_bn", 3, 10, 32, width=width)
    layout, start = ParamLayout.of(model), flatten(model)
    target = start + 0.01 * torch.randn(start.shape)
    x_sel, x_dis0 = torch.randn(n // 2, 3, 32, 32), torch.randn(n - n // 2, 3, 32, 32)
    y = torch.arange(n) % 10
    batches = minibatches(n, n // 2, steps, torch.Generator().manual_seed(1))
    out = {"case": {"network": "convnet_bn", "width": width, "images": n, "syn_steps": steps, "batch": n // 2}}
    with no_tf32():
        for memory in MEMORY_MODES:
            cpu = _matching(model, layout, start, target, x_sel, x_dis0, y, 0.01, batches, 2, memory, torch.device("cpu"))
            dev = _matching(model, layout, start, target, x_sel, x_dis0, y, 0.01, batches, 2, memory, device)
            out[memory] = {"loss": relative_error(dev[0], cpu[0]), "grad_images": relative_error(dev[1], cpu[1]),
                           "grad_syn_lr": relative_error(dev[2], cpu[2]), "loss_value": cpu[0].item()}
    return out


# ----------------------------------------------------------------------------- cost

def _random_trajectory(model, epochs: int, g: torch.Generator) -> Trajectory:
    start = flatten(model)
    steps = 0.001 * torch.randn(epochs, len(start), generator=g).cumsum(0)
    layout = ParamLayout.of(model)
    return Trajectory(list(layout.names), [list(s) for s in layout.shapes], torch.cat([start[None], start + steps]),
                      [0.0] * epochs)


def distill_cost(device: torch.device, dataset: str, ipc: int, memory: str, tiny: bool, iters: int) -> dict:
    """Seconds per iteration of ``selmatch.distill.distill`` at the paper's setting, and peak device memory."""
    classes, size, _ = SHAPES[dataset]
    setting = paper_setting(dataset, ipc).for_image_size(size)
    cfg, expert = setting.distill, setting.expert
    width, per_class, syn_steps = (8, 2, 2) if tiny else (expert.width, ipc, cfg.syn_steps)
    n_distill = int(per_class * setting.alpha) * classes
    n_select = per_class * classes - n_distill
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n_select + n_distill, 3, size, size, generator=g)
    y = torch.arange(n_select + n_distill) % classes
    torch.manual_seed(0)
    model = build_model(expert.model, 3, classes, size, width=width, depth=expert.depth)
    trajs = [_random_trajectory(model, 3, g)]
    run_cfg = cfg.with_(syn_steps=syn_steps, batch_syn=min(cfg.batch_syn, len(x)), memory=memory, expert_epochs=1,
                        max_start_epoch=2, lr_img=1e-3, checkpoint_every=10**6)

    def timed(iterations: int) -> float:
        sync(device)
        t0 = time.perf_counter()
        distill(x[:n_select], y[:n_select], x[n_select:], y[n_select:], trajs, expert.model, num_classes=classes,
                cfg=run_cfg.with_(iterations=iterations), width=width, depth=expert.depth, progress=False,
                device=device)
        sync(device)
        return time.perf_counter() - t0

    timed(1)                                   # warm-up: kernels, allocator, the trajectory on the device
    reset_peak(device)
    setup = timed(1)
    total = timed(1 + iters)
    return {"s_per_iteration": max(total - setup, 1e-9) / iters, "peak_gb": peak_gb(device), "syn_steps": syn_steps,
            "batch": run_cfg.batch_syn, "images": len(x), "distilled": n_distill, "width": width or 128,
            "network": f"{expert.model} depth {expert.depth or 3}", "iterations_timed": iters}


def _train_rate(device: torch.device, cfg: TrainConfig, size: int, classes: int, steps: int, combined: bool) -> float:
    """Images per second of ``selmatch.train.train`` over ``steps`` minibatches, after a warm-up run."""
    n = cfg.batch_size * steps
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 3, size, size, generator=g), torch.arange(n) % classes
    distilled = (torch.arange(n) % 2 == 0) if combined else None
    train(x[:cfg.batch_size * 2], y[:cfg.batch_size * 2], cfg.with_(epochs=1), 0, num_classes=classes,
          distilled=None if distilled is None else distilled[:cfg.batch_size * 2], progress=False, device=device)
    sync(device)
    t0 = time.perf_counter()
    train(x, y, cfg.with_(epochs=1), 1, num_classes=classes, distilled=distilled, progress=False, device=device)
    sync(device)
    return n / (time.perf_counter() - t0)


def expert_epoch_cost(device: torch.device, dataset: str, tiny: bool) -> dict:
    classes, size, n_train = SHAPES[dataset]
    expert = paper_setting(dataset).for_image_size(size).expert
    cfg = expert.train_config().with_(width=8 if tiny else expert.width)
    rate = _train_rate(device, cfg, size, classes, 2 if tiny else 30, combined=False)
    return {"img_s": rate, "s_per_epoch": n_train / rate, "network": f"{expert.model} depth {expert.depth or 3}",
            "batch": cfg.batch_size, "train_images": n_train}


def eval_throughput(device: torch.device, size: int, tiny: bool) -> dict:
    model = "resnet18_bn_tiny" if size >= 64 else "resnet18_bn"
    cfg = TrainConfig(model=model, width=8 if tiny else None, batch_size=128, augmentation="combined")
    return {"img_s": _train_rate(device, cfg, size, 10, 2 if tiny else 20, combined=True), "network": model,
            "batch": 128, "augmentation": "combined"}


def paper_cost(dataset: str, ipc: int, row: dict, expert: dict, evaluation: dict) -> dict:
    """GPU-hours of the paper's whole run of one setting, from the measured rates."""
    classes, size, _ = SHAPES[dataset]
    setting = paper_setting(dataset, ipc)
    hours = {
        "experts": PAPER_RUN["experts"] * PAPER_RUN["expert_epochs"] * expert["s_per_epoch"] / 3600,
        "distillation": PAPER_RUN["iterations"] * row["default"]["s_per_iteration"] / 3600,
        "evaluation": PAPER_RUN["evaluations"] * setting.eval_epochs * ipc * classes / evaluation["img_s"] / 3600,
    }
    return {**hours, "total": sum(hours.values()), "eval_epochs": setting.eval_epochs}


# ----------------------------------------------------------------------------- the check

class Budget:
    def __init__(self, seconds: float):
        self.t0, self.seconds, self.skipped = time.perf_counter(), seconds, []

    def allows(self, what: str) -> bool:
        if time.perf_counter() - self.t0 < self.seconds:
            return True
        self.skipped.append(what)
        return False


def run_check(device: torch.device, tiny: bool, iters: int, budget_s: float, log=print) -> dict:
    budget = Budget(budget_s)
    record = {"device": str(device), "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
              "torch": torch.__version__, "python": platform.python_version(), "tiny": tiny,
              "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
              "tf32": {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32},
              "paper_run": PAPER_RUN, "distill": {}, "experts": {}, "evaluation": {}, "paper_cost_gpu_hours": {}}
    log(f"equivalence on {device} against the CPU ...")
    record["equivalence"] = equivalence(device, tiny)
    for dataset in ("cifar10", "tinyimagenet"):
        if budget.allows(f"experts/{dataset}"):
            record["experts"][dataset] = expert_epoch_cost(device, dataset, tiny)
            log(f"expert epoch, {dataset}: {record['experts'][dataset]['s_per_epoch']:.1f} s")
    record["experts"]["cifar100"] = record["experts"].get("cifar10")      # the same network and data size
    for size in (32, 64):
        if budget.allows(f"evaluation/{size}"):
            record["evaluation"][str(size)] = eval_throughput(device, size, tiny)
            log(f"ResNet-18-BN evaluation, {size}x{size}: {record['evaluation'][str(size)]['img_s']:.0f} img/s")
    for dataset, ipc in SETTINGS:
        key, row = f"{dataset}-ipc{ipc}", {}
        for memory in ("default", "constant"):
            if budget.allows(f"distill/{key}/{memory}"):
                try:
                    row[memory] = distill_cost(device, dataset, ipc, memory, tiny, iters)
                except torch.cuda.OutOfMemoryError as e:
                    row[memory] = {"out_of_memory": str(e).splitlines()[0][:200]}
                    torch.cuda.empty_cache()
                log(f"distillation {key} {memory}: " + (f"{row[memory]['s_per_iteration']:.3f} s/iteration, "
                    f"peak {row[memory]['peak_gb']:.2f} GB" if "s_per_iteration" in row[memory] else "out of memory"))
        record["distill"][key] = row
        expert = record["experts"].get(dataset)
        evaluation = record["evaluation"].get(str(SHAPES[dataset][1]))
        if expert and evaluation and "s_per_iteration" in row.get("default", {}):
            record["paper_cost_gpu_hours"][key] = paper_cost(dataset, ipc, row, expert, evaluation)
    record["skipped"] = budget.skipped
    record["seconds"] = time.perf_counter() - budget.t0
    return record


def markdown(record: dict) -> str:
    """The record as tables (what the book's "Cost on a GPU" page shows)."""
    where = record["gpu"] or record["device"]
    lines = [f"Measured on {where}, torch {record['torch']}, {record['date'][:10]}"
             + (" (TINY sizes: checks the harness, not a measurement)" if record["tiny"] else "") + ".", "",
             "| memory mode | loss | image gradient | syn_lr gradient |", "|---|---|---|---|"]
    for mode in MEMORY_MODES:
        e = record["equivalence"].get(mode, {})
        lines.append(f"| {mode} | {e.get('loss', float('nan')):.1e} | {e.get('grad_images', float('nan')):.1e} | "
                     f"{e.get('grad_syn_lr', float('nan')):.1e} |")
    lines += ["", "| setting | network | s / iteration (default) | peak GB (default) | s / iteration (constant) "
              "| peak GB (constant) | GPU-hours: experts | distillation | evaluation | total |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for key, row in record["distill"].items():
        d, c = row.get("default", {}), row.get("constant", {})
        h = record["paper_cost_gpu_hours"].get(key, {})

        def f(v, fmt):
            return "–" if v is None else format(v, fmt)

        lines.append(f"| {key} | {d.get('network', c.get('network', '–'))} | {f(d.get('s_per_iteration'), '.3f')} | "
                     f"{f(d.get('peak_gb'), '.2f')} | {f(c.get('s_per_iteration'), '.3f')} | {f(c.get('peak_gb'), '.2f')} | "
                     f"{f(h.get('experts'), '.1f')} | {f(h.get('distillation'), '.1f')} | {f(h.get('evaluation'), '.1f')} | "
                     f"{f(h.get('total'), '.1f')} |")
    lines += ["", "| expert training | s / epoch | img/s |", "|---|---|---|"]
    lines += [f"| {k} ({v['network']}, {v['train_images']:,} images, batch {v['batch']}) | {v['s_per_epoch']:.1f} | "
              f"{v['img_s']:.0f} |" for k, v in record["experts"].items() if v and k != "cifar100"]
    lines += ["", "| evaluation | img/s |", "|---|---|"]
    lines += [f"| {v['network']}, {k}x{k}, batch {v['batch']}, {v['augmentation']} | {v['img_s']:.0f} |"
              for k, v in record["evaluation"].items()]
    if record.get("skipped"):
        lines += ["", f"Skipped (time budget): {', '.join(record['skipped'])}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--tiny", action="store_true", help="tiny sizes: checks the harness in seconds (tests, CPU)")
    p.add_argument("--iters", type=int, default=None, help="distillation iterations timed per case (default 3; tiny 1)")
    p.add_argument("--budget-s", type=float, default=420.0, help="start no new measurement after this (default 420)")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "gpu", help="folder for the JSON and markdown")
    a = p.parse_args(argv)
    try:
        device = resolve_device(a.device)
    except ValueError as e:
        p.error(str(e))
    iters = a.iters or (1 if a.tiny else 3)
    if iters < 1:
        p.error(f"--iters={iters} must be >= 1")
    record = run_check(device, a.tiny, iters, a.budget_s)
    name = re.sub(r"[^a-z0-9]+", "-", (record["gpu"] or record["device"]).lower()).strip("-")
    stem = a.out / f"{name}-{record['date'][:10]}{'-tiny' if a.tiny else ''}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    table = markdown(record)
    print("\n" + table)
    stem.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    stem.with_suffix(".md").write_text(table)
    print(f"written {stem}.json and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
