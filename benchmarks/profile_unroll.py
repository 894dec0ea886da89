"""Where one distillation iteration spends its time: ``python -m benchmarks.profile_unroll``.

Runs ``benchmarks.workloads.distill_iteration`` (default memory mode) under ``torch.profiler`` and prints
the operators by self CPU time, grouped by input shape, next to a profile of plain training steps on
the same batch. This is the profile behind ``selmatch.fast.fastgrad`` (book, library page: "Speed of the
unroll").
"""
from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from .workloads import _net, distill_iteration, plain_step


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", default="convnet")
    p.add_argument("--syn-steps", type=int, default=5)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--rows", type=int, default=25, help="operators to list (default 25)")
    a = p.parse_args(argv)
    if a.syn_steps < 1:
        p.error(f"--syn-steps={a.syn_steps} must be >= 1")
    model, x, y = _net(a.network, a.width, 100)
    g = torch.Generator().manual_seed(0)
    distill_iteration(model, x, y, 1, 100, "default", g)              # warm-up
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as unrolled:
        distill_iteration(model, x, y, a.syn_steps, 100, "default", g)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as plain:
        for _ in range(a.syn_steps):
            plain_step(model, x, y, g)
    for title, prof in ((f"distillation iteration, {a.syn_steps} unrolled steps", unrolled),
                        (f"{a.syn_steps} plain training steps", plain)):
        print(f"\n{title} ({a.network}, width {a.width}, batch 100)")
        print(prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=a.rows,
                                                                 max_name_column_width=40, max_shapes_column_width=60))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
