"""Benchmark of the unrolled trajectory-matching step (``make bench``; prints figures, asserts nothing).

For ConvNet (width 128, depth 3, instance norm) on CIFAR-10 shapes, IPC 10 (100 images), batch 100:
seconds per unrolled student step, its ratio to a plain training step on the same batch and network
(measured side by side in the same process), and the peak extra memory of one distillation iteration
for each ``syn_steps``. Each ``syn_steps`` value runs in a fresh subprocess so its peak RSS is its own.

    python -m selmatch.bench [--syn-steps 5 10 20] [--width 128] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from .augment import augment
from .distill import matching_loss, minibatches, unroll
from .experts import flat_params
from .networks import build_model


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _setup(width: int, n: int = 100, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model("convnet", 3, 10, 32, width=width)
    x = torch.randn(n, 3, 32, 32, requires_grad=True)
    y = torch.arange(n) % 10
    return model, x, y


def plain_step_seconds(width: int, repeats: int) -> float:
    model, x, y = _setup(width)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    g = torch.Generator().manual_seed(0)
    times = []
    for _ in range(repeats + 1):                    # the first is a warm-up
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(augment(x.detach(), "dsa", g)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def unrolled_iteration(width: int, syn_steps: int, memory: str = "default") -> dict:
    """One distillation iteration (unroll + matching-loss backward); seconds and peak extra memory."""
    model, x, y = _setup(width)
    if memory == "constant":
        return _constant_iteration(model, x, y, syn_steps)
    names = [n for n, _ in model.named_parameters()]
    shapes = [list(p.shape) for _, p in model.named_parameters()]
    start = flat_params(model)
    target = start + 0.01 * torch.randn_like(start)
    g = torch.Generator().manual_seed(0)
    syn_lr = torch.tensor(0.01, requires_grad=True)
    base = _rss_mb()
    t0 = time.perf_counter()
    theta = unroll(model, names, shapes, start.clone().requires_grad_(True), x, y, syn_lr,
                   minibatches(len(x), 100, syn_steps, g), g, "dsa")
    matching_loss(theta, start, target).backward()
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"syn_steps": syn_steps, "seconds_per_step": seconds / syn_steps, "peak_extra_mb": peak - base}


def _constant_iteration(model, x, y, syn_steps: int) -> dict:
    from .remat import matching_grads

    names = [n for n, _ in model.named_parameters()]
    shapes = [list(p.shape) for _, p in model.named_parameters()]
    start = flat_params(model)
    target = start + 0.01 * torch.randn_like(start)
    g = torch.Generator().manual_seed(0)
    base = _rss_mb()
    t0 = time.perf_counter()
    matching_grads(model, names, shapes, start, target, x[:0].detach(), x.detach(), y, torch.tensor(0.01),
                   minibatches(len(x), 100, syn_steps, g), g, "dsa")
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"syn_steps": syn_steps, "seconds_per_step": seconds / syn_steps, "peak_extra_mb": peak - base}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--syn-steps", type=int, nargs="+", default=[5, 10, 20])
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--memory", nargs="+", default=["default", "constant"], choices=["default", "constant"])
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)   # internal: one syn_steps value, JSON out
    args = p.parse_args(argv)
    if args.one is not None:
        print(json.dumps(unrolled_iteration(args.width, args.one, args.memory[0])))
        return 0
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ConvNet width {args.width}, instance norm, "
          "CIFAR-10 shapes, IPC 10 (100 images), batch 100, DSA")
    plain = plain_step_seconds(args.width, args.repeats)
    print(f"plain training step: {plain * 1000:.1f} ms (median of {args.repeats})")
    print(f"{'memory':>8} {'syn_steps':>9} {'s/unrolled step':>16} {'ratio to plain':>15} {'peak extra MB':>14}")
    for memory in args.memory:
        for s in args.syn_steps:
            r = subprocess.run([sys.executable, "-m", "selmatch.bench", "--one", str(s), "--width", str(args.width),
                                "--memory", memory], capture_output=True, text=True, check=True)
            row = json.loads(r.stdout.strip().splitlines()[-1])
            plain_now = plain_step_seconds(args.width, args.repeats)   # re-measured beside each row: a noisy machine
            print(f"{memory:>8} {s:>9} {row['seconds_per_step']:>16.3f} {row['seconds_per_step'] / plain_now:>15.2f} "
                  f"{row['peak_extra_mb']:>14.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
