"""How much shorter independent work gets as Ray tasks on this machine: ``N`` experts trained in this process
(torch's default threads, then one thread) against the same experts as Ray tasks of one CPU each on a local
Ray.

    PYTHONPATH=. python -m benchmarks.ray_speedup [--experts 4] [--cpus 2] [--epochs 2]

Prints each wall time and its speed-up over the first, and checks that Ray's experts equal the one-thread run's
bit for bit (with more threads the sums run in another order and training drifts apart).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experts", type=int, default=4)
    p.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray (default 2)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--width", type=int, default=32)
    args = p.parse_args(argv)

    import torch

    from selmatch import ExpertConfig, load_dataset, load_trajectory, train_experts

    ds = load_dataset("mnist5k")
    x, xt = ds.normalize(ds.x_train), ds.normalize(ds.x_test)
    cfg = ExpertConfig(model="convnet", width=args.width, num_experts=args.experts, epochs=args.epochs, batch_size=256)
    out = Path(tempfile.mkdtemp())
    times = {}

    def run(name: str):
        t0 = time.perf_counter()
        paths = train_experts(x, ds.y_train, xt, ds.y_test, cfg, out / name, seed=0, num_classes=ds.num_classes,
                              progress=False)
        times[name] = time.perf_counter() - t0
        return paths

    os.environ.pop("SELMATCH_RAY", None)
    serial = run(f"in process, {torch.get_num_threads()} threads")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    one_thread = run("in process, 1 thread")
    torch.set_num_threads(threads)
    os.environ.update(SELMATCH_RAY="auto", SELMATCH_RAY_CPUS=str(args.cpus))
    from selmatch import cluster

    cluster.ray_module()                                 # start Ray before timing
    ray = run(f"Ray, {args.cpus} tasks of 1 thread")
    same = all(torch.equal(a, b) for s, r in zip(one_thread, ray)                # a task runs one thread
               for a, b in zip(load_trajectory(s).params, load_trajectory(r).params))
    del serial
    base = next(iter(times.values()))
    for name, t in times.items():
        print(f"{name:>28}: {t:7.1f} s   speed-up {base / t:4.2f}x")
    print(f"{args.experts} experts ({cfg.model} width {args.width}, {args.epochs} epochs, mnist5k); "
          f"Ray's experts equal the one-thread run's bit for bit: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
