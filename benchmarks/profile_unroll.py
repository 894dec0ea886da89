"""Where one distillation iteration spends its time: ``python -m benchmarks.profile_unroll``.

Runs ``benchmarks.workloads.distill_iteration`` (default memory mode) under ``torch.profiler`` and prints
the operators by self CPU time, grouped by input shape, next to a profile of plain training steps on
the same batch. This is the profile behind ``selmatch.fast.fastgrad`` (book, library page: "Speed of the
unroll").
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from selmatch.student import ParamLayout, flatten

from .endtoend import _cpu_name
from .workloads import _net, distill_iteration, plain_step


CONVOLUTIONS = ("aten::convolution_backward", "aten::mkldnn_convolution", "aten::_convolution", "aten::convolution",
                "aten::conv2d", "aten::thnn_conv2d", "aten::_slow_conv2d_forward", "aten::_slow_conv2d_backward")


def loop_profile(network: str, syn_steps: int, width: int = 128) -> dict:
    """One whole ``distill()`` iteration (after one unprofiled) under ``torch.profiler``: its seconds, the self
    time of the convolution operators and of everything else; and, from a one-step iteration profiled with the
    profiler's FLOP count (which records shapes, so is kept out of the split), the forward convolutions' rate.
    Experts: two trajectories of random parameters near the network's own."""
    from selmatch.artifacts import Trajectory
    from selmatch.distill import DistillConfig, distill

    model, x, y = _net(network, width, 100)
    layout = ParamLayout.of(model)
    start = flatten(model)
    g = torch.Generator().manual_seed(0)
    experts = [Trajectory(list(layout.names), [list(s) for s in layout.shapes],
                          start + 0.01 * torch.randn(4, start.numel(), generator=g).cumsum(0), [0.0] * 3)
               for _ in range(2)]
    kw = dict(num_classes=10, width=width, progress=False)
    cfg = DistillConfig(iterations=1, syn_steps=syn_steps, max_start_epoch=2, batch_syn=100)
    distill(x[:50], y[:50], x[50:], y[50:], experts, network, cfg=cfg, **kw)            # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:          # the split: no shapes, the least overhead
        t0 = time.perf_counter()
        distill(x[:50], y[:50], x[50:], y[50:], experts, network, cfg=cfg, seed=1, **kw)
        seconds = time.perf_counter() - t0
    events = prof.key_averages()
    conv = sum(e.self_cpu_time_total for e in events if e.key in CONVOLUTIONS) / 1e6
    total = sum(e.self_cpu_time_total for e in events) / 1e6
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as counted:      # the rate: FLOPs need shapes
        distill(x[:50], y[:50], x[50:], y[50:], experts, network, cfg=cfg.with_(syn_steps=1), seed=2, **kw)
    events = counted.key_averages()
    flops = sum(e.flops for e in events if e.key == "aten::conv2d" and e.flops)
    fwd_s = sum(e.self_cpu_time_total for e in events if e.key == "aten::mkldnn_convolution") / 1e6
    return {"network": network, "syn_steps": syn_steps, "width": width, "iteration_s": seconds,
            "profiled_s": total, "convolution_s": conv, "other_s": total - conv,
            "forward_conv_gflops": flops / 1e9 / fwd_s if fwd_s and flops else None,
            "threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", default="convnet")
    p.add_argument("--syn-steps", type=int, default=5)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--rows", type=int, default=25, help="operators to list (default 25)")
    p.add_argument("--loop", nargs="*", metavar="NETWORK/SYN_STEPS",
                   help="profile whole distill() iterations instead, for these cases (e.g. convnet/10 convnet_bn/20)")
    p.add_argument("--json", type=Path, help="with --loop: write the split there (e.g. benchmarks/loop_profile.json)")
    a = p.parse_args(argv)
    if a.syn_steps < 1:
        p.error(f"--syn-steps={a.syn_steps} must be >= 1")
    if a.loop is not None:
        rows = []
        for text in a.loop or [f"{a.network}/{a.syn_steps}"]:
            net, _, steps = text.partition("/")
            if net not in ("convnet", "convnet_bn") or not steps.isdigit() or int(steps) < 1:
                p.error(f"--loop {text!r}: expected NETWORK/SYN_STEPS with NETWORK convnet or convnet_bn")
            r = loop_profile(net, int(steps), a.width)
            rows.append(r)
            print(f"{net}, {steps} steps, width {a.width}: {r['iteration_s']:.2f} s per iteration; convolutions "
                  f"{r['convolution_s']:.2f} s, everything else {r['other_s']:.2f} s (self CPU time)"
                  + (f"; forward convolutions at {r['forward_conv_gflops']:.0f} GFLOP/s" if r["forward_conv_gflops"]
                     else ""), flush=True)
        if a.json:
            a.json.write_text(json.dumps({"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                                          "cpu": _cpu_name(), "torch": torch.__version__, "rows": rows}, indent=1)
                              + "\n")
            print(f"written {a.json}")
        return 0
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
