"""One measurement per process (so each peak RSS is its own): ``python -m benchmarks.workloads KIND ...``
prints one JSON line. The orchestration and the targets live in ``benchmarks.__main__``."""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time

import torch
import torch.nn.functional as F

from selmatch.augment import augment
from selmatch.experts import ExpertConfig
from selmatch.distill import matching_gradients
from selmatch.fast.malloc import reuse_freed_memory
from selmatch.networks import build_model
from selmatch.student import ParamLayout, flatten, minibatches
from selmatch.train import TrainConfig, train


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20   # ru_maxrss is in KiB on Linux


def _net(network: str, width: int, n: int, seed: int = 0, recompute: int = 0):
    torch.manual_seed(seed)
    model = build_model(network, 3, 10, 32, width=width)
    model.recompute_blocks = recompute
    return model, torch.randn(n, 3, 32, 32), torch.arange(n) % 10


def plain_step(model, x, y, g) -> float:
    """Seconds for one ordinary training step on the batch (DSA, forward, backward, SGD update), with
    the model's ordinary blocks (a recompute-mode model is measured without its recomputation)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    recompute, model.recompute_blocks = getattr(model, "recompute_blocks", 0), 0
    t0 = time.perf_counter()
    with reuse_freed_memory():                 # as selmatch.train.train runs its steps
        loss = F.cross_entropy(model(augment(x, "dsa", g)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    model.recompute_blocks = recompute
    return seconds


def distill_iteration(model, x, y, syn_steps: int, batch: int, memory: str, g) -> float:
    """Seconds for one distillation iteration: ``syn_steps`` unrolled steps and the gradient of the
    matching loss w.r.t. the images and the learning rate."""
    layout = ParamLayout.of(model)
    start = flatten(model)
    target = start + 0.01 * torch.randn(start.shape, generator=g)
    syn_lr = torch.tensor(0.01, requires_grad=True)
    x_dis = x.clone().requires_grad_(True)
    batches = minibatches(len(x), batch, syn_steps, g)
    t0 = time.perf_counter()
    with reuse_freed_memory():                 # as selmatch.distill.distill runs its loop
        matching_gradients(memory, model, layout, start, target, x[:0], x_dis, y, syn_lr, batches, g, "dsa")
    return time.perf_counter() - t0


def run_distill(network: str, syn_steps: int, memory: str, width: int, n: int, batch: int, plain_reps: int,
                malloc: str = "reuse") -> dict:
    os.environ["SELMATCH_MALLOC"] = malloc
    model, x, y = _net(network, width, n, recompute=int(memory == "recompute"))
    g = torch.Generator().manual_seed(0)
    with reuse_freed_memory():          # held across all steps, as train() and distill() hold it (no trim between)
        distill_iteration(model, x, y, 1, batch, memory, g)             # warm-up (allocator, kernels)
        plain = [plain_step(model, x[:batch], y[:batch], g) for _ in range(plain_reps + 1)][1:]
        seconds = distill_iteration(model, x, y, syn_steps, batch, memory, g)
        plain_after = [plain_step(model, x[:batch], y[:batch], g) for _ in range(plain_reps)]
    p = statistics.median(plain + plain_after)                          # bracketing the unroll: drift cancels
    return {"network": network, "syn_steps": syn_steps, "memory": memory, "malloc": malloc, "plain_s": p,
            "step_s": seconds / syn_steps, "ratio": seconds / syn_steps / p, "peak_gb": peak_rss_gb()}


def run_train(network: str, n: int, batch: int, augmentation: str, epochs: int, width: int | None,
              lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 5e-4, compile: bool = False,
              malloc: str = "reuse") -> dict:
    """Images per second of ``selmatch.train.train`` after a warm-up epoch (which also compiles, with
    ``compile``: ``SELMATCH_COMPILE=1``; its seconds are reported as ``warmup_s``)."""
    os.environ["SELMATCH_COMPILE"] = "1" if compile else "0"
    os.environ["SELMATCH_MALLOC"] = malloc
    torch.manual_seed(0)
    x, y = torch.randn(n, 3, 32, 32), torch.arange(n) % 10
    distilled = torch.arange(n) < n // 2       # combined augmentation: DSA on the distilled half, crop+flip on the rest
    cfg = TrainConfig(model=network, width=width, epochs=1, lr=lr, momentum=momentum, weight_decay=weight_decay,
                      batch_size=batch, augmentation=augmentation)
    t0 = time.perf_counter()
    train(x, y, cfg, 0, num_classes=10, distilled=distilled, progress=False)             # warm-up epoch
    warmup = time.perf_counter() - t0
    t0 = time.perf_counter()
    train(x, y, cfg.with_(epochs=epochs), 1, num_classes=10, distilled=distilled, progress=False)
    seconds = time.perf_counter() - t0
    return {"network": network, "n": n, "batch": batch, "augmentation": augmentation, "epochs": epochs,
            "compile": compile, "malloc": malloc, "seconds": seconds, "warmup_s": warmup, "img_s": n * epochs / seconds}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="kind", required=True)
    d = sub.add_parser("distill")
    d.add_argument("--network", default="convnet")
    d.add_argument("--syn-steps", type=int, default=10)
    d.add_argument("--memory", default="default", choices=["default", "recompute", "constant"])
    d.add_argument("--width", type=int, default=128)
    d.add_argument("--n", type=int, default=100)
    d.add_argument("--batch", type=int, default=100)
    d.add_argument("--plain-reps", type=int, default=3)
    d.add_argument("--malloc", default="reuse", choices=["reuse", "system"],
                   help="system: glibc's own behaviour (SELMATCH_MALLOC=system; see selmatch.fast.malloc)")
    t = sub.add_parser("train")
    t.add_argument("--network", default="convnet")
    t.add_argument("--n", type=int, default=500)
    t.add_argument("--batch", type=int, default=128)
    t.add_argument("--augmentation", default="combined")
    t.add_argument("--epochs", type=int, default=3)
    t.add_argument("--width", type=int, default=None)
    t.add_argument("--expert", action="store_true", help="the expert recipe: lr 0.01, no momentum, no weight decay")
    t.add_argument("--compile", action="store_true", help="train through torch.compile (SELMATCH_COMPILE=1)")
    t.add_argument("--malloc", default="reuse", choices=["reuse", "system"],
                   help="system: glibc's own behaviour (SELMATCH_MALLOC=system; see selmatch.fast.malloc)")
    a = p.parse_args(argv)
    if a.kind == "distill":
        out = run_distill(a.network, a.syn_steps, a.memory, a.width, a.n, a.batch, a.plain_reps, a.malloc)
    else:
        e = ExpertConfig()
        extra = dict(lr=e.lr, momentum=e.momentum, weight_decay=e.weight_decay) if a.expert else {}
        out = run_train(a.network, a.n, a.batch, a.augmentation, a.epochs, a.width, compile=a.compile, malloc=a.malloc, **extra)
    out["threads"] = torch.get_num_threads()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
