"""``make bench``: measure selmatch against the official code's figures and print ``targets met: K/N``.

    python -m benchmarks [--reps 3] [--quick] [--only endtoend distill constant train book] [--json PATH]
                         [--official DIR]

``--official DIR`` (or ``SELMATCH_OFFICIAL=DIR``; ``make bench OFFICIAL=DIR``) also times the official
SelMatch code from a clone of github.com/Yongalls/SelMatch in the same run: its ``distill.py`` end to end
against ``selmatch distill`` (``benchmarks.endtoend``: what a user runs; the table the performance page
renders, written to ``benchmarks/endtoend.json``), and its training loop (``benchmarks.official``). The
distillation rows below time one isolated iteration: a diagnostic, not the comparison.

Each measurement runs in its own process (``benchmarks.workloads``) so its peak resident set size is
its own; distillation ratios divide by a plain training step measured in the same process, on the
same network and batch, just before and after the unroll.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

import torch

from .targets import OFFICIAL, TARGETS, met

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("endtoend", "distill", "constant", "train", "book")


def _run(args: list[str], module: str = "benchmarks.workloads") -> dict:
    r = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        raise RuntimeError(f"benchmark process {' '.join(args)} failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _stats(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def _repeat(args: list[str], reps: int, keys: tuple[str, ...], module: str = "benchmarks.workloads") -> dict:
    runs = [_run(args, module) for _ in range(reps)]
    return {**{k: _stats([r[k] for r in runs]) for k in keys}, "runs": runs}


def _fmt(s: dict | None, digits: int = 2) -> str:
    if s is None:
        return "–"
    if s["n"] == 1 or s["min"] == s["max"]:
        return f"{s['median']:.{digits}f}"
    return f"{s['median']:.{digits}f} [{s['min']:.{digits}f}–{s['max']:.{digits}f}]"


def _value(s: dict | None) -> str:
    return f"{s['median']:.2f}" if s else "–"


def book_seconds() -> dict | None:
    """The last ``make book`` with every result cached, as timed by the Makefile (book/build_time.json)."""
    path = ROOT / "book" / "build_time.json"
    if not path.exists():
        return None
    rec = json.loads(path.read_text())
    if rec.get("computed", 0) or not rec.get("ok", False):
        print(f"(the last make book computed {rec.get('computed')} results or failed: not a cached build)")
        return None
    return {**rec, "stats": _stats([rec["seconds"]])}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=3, help="processes per measurement (default 3)")
    p.add_argument("--quick", action="store_true", help="small shapes, 1 repetition: checks the harness, not targets")
    p.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results.json")
    p.add_argument("--official", type=Path, default=os.environ.get("SELMATCH_OFFICIAL") or None,
                   help="a clone of github.com/Yongalls/SelMatch to time side by side (default $SELMATCH_OFFICIAL)")
    a = p.parse_args(argv)
    if a.reps < 1:
        p.error(f"--reps={a.reps} must be >= 1")
    if a.official is not None and not (a.official / "utils.py").exists():
        p.error(f"--official={a.official}: no utils.py there (expected a clone of github.com/Yongalls/SelMatch)")
    reps = 1 if a.quick else a.reps
    width, steps, const_steps = (16, (2, 4), (2, 4)) if a.quick else (128, (5, 10, 20), (5, 20, 40))
    n_train, n_expert, epochs = (64, 256, 1) if a.quick else (500, 2560, 3)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}; "
          f"{reps} process(es) per figure: median [min–max]" + ("; QUICK: not comparable with targets" if a.quick else ""))
    figures: dict[str, dict] = {}
    rows: dict[str, dict] = {}

    if "endtoend" in a.only:
        if a.official is None or a.quick:
            print("\nend to end against the official distill.py: not measured (needs --official DIR, not --quick)")
        else:
            from . import endtoend

            print(f"\nend to end: the official distill.py against selmatch distill ({a.reps} processes per side, "
                  "alternating; benchmarks.endtoend)")
            print(endtoend.HEADER)
            cases = [endtoend.parse_case(c) for c in endtoend.DEFAULT_CASES]
            e2e = endtoend.compare(a.official, cases, a.reps, endtoend.ITERATIONS, endtoend.WARMUP, endtoend.WORK)
            endtoend.write(endtoend.JSON, e2e, a.reps, endtoend.ITERATIONS, endtoend.WARMUP)
            for row in e2e:
                figures[f"endtoend/speedup/{row['name']}"] = row["speedup"]
                figures[f"endtoend/memory/{row['name']}"] = _stats([row["memory_ratio"]])
            rows["endtoend"] = e2e

    if "distill" in a.only or "constant" in a.only:
        print("\ndistillation, one isolated iteration (a diagnostic: the end-to-end comparison is above), CIFAR-10 "
              "shapes, IPC 10 (100 images), batch 100, DSA; memory modes as in DistillConfig.memory: default, "
              "recompute (first block recomputed), constant")
        print(f"{'network':<11} {'memory':<9} {'syn_steps':>9} {'plain ms':>14} {'unrolled s/step':>20} "
              f"{'ratio':>20} {'peak GB':>20}  official ratio / peak")
        cases = []
        if "distill" in a.only:
            cases += [(net, s, "default") for net in ("convnet", "convnet_bn") for s in steps]
            cases += [("convnet", s, "recompute") for s in steps]
        if "constant" in a.only:
            cases += [("convnet", s, "constant") for s in const_steps]
            if "distill" not in a.only:
                cases += [("convnet", const_steps[1], "default")]
        for net, s, mem in cases:
            r = _repeat(["distill", "--network", net, "--syn-steps", str(s), "--width", str(width), "--memory", mem],
                        reps, ("plain_s", "step_s", "ratio", "peak_gb"))
            rows[f"{net}/{mem}/{s}"] = r
            off_r = OFFICIAL["distill_ratio"].get(net, {}).get(s)
            off_m = OFFICIAL["distill_peak_gb"].get(net, {}).get(s) if mem != "constant" else None
            ms = {k: v * 1000 for k, v in r["plain_s"].items() if k != "n"} | {"n": r["plain_s"]["n"]}
            here = ""
            if a.official is not None and mem == "default" and not a.quick:   # the official net is width 128
                off = _repeat([str(a.official), "distill", "--network", net, "--syn-steps", str(s), "--n", "100",
                               "--batch", "100"], reps, ("step_s", "peak_gb"), module="benchmarks.official")
                r["official"] = off
                speed = _stats([off["step_s"]["median"] / r["step_s"]["median"]])
                figures[f"vs_official/distill/{net}/{s}"] = speed
                r["official_over_ours"] = speed
                here = (f"; official here {_fmt(off['step_s'])} s/step, {_fmt(off['peak_gb'])} GB: "
                        f"ours {speed['median']:.2f}x faster at "
                        f"{r['peak_gb']['median'] / off['peak_gb']['median']:.2f}x its memory")
            print(f"{net:<11} {mem:<9} {s:>9} {_fmt(ms, 0):>14} {_fmt(r['step_s']):>20} {_fmt(r['ratio']):>20} "
                  f"{_fmt(r['peak_gb']):>20}  {off_r if mem == 'default' and off_r else '–'} / {off_m or '–'}{here}")
            if mem == "default":
                figures[f"ratio/{net}/{s}"] = r["ratio"]
            if net == "convnet" and mem != "constant":
                figures[f"peak_gb/{mem}/{s}"] = r["peak_gb"]
        lo, hi = f"convnet/constant/{const_steps[0]}", f"convnet/constant/{const_steps[-1]}"
        if lo in rows and hi in rows:
            figures["constant/peak_40_over_5"] = _stats([rows[hi]["peak_gb"]["median"] / rows[lo]["peak_gb"]["median"]])
        mid_c, mid_d = f"convnet/constant/{const_steps[1]}", f"convnet/default/{const_steps[1]}"
        if mid_c in rows and mid_d in rows:   # time per step relative to the plain step, so drift cancels
            figures["constant/time_over_default"] = _stats([rows[mid_c]["ratio"]["median"] / rows[mid_d]["ratio"]["median"]])

    if "train" in a.only:
        print(f"\ntraining throughput, CIFAR-10 shapes ({n_train}-image set, batch 128; experts: {n_expert} images, "
              "batch 256): eager PyTorch and SELMATCH_COMPILE=1 (torch.compile), side by side"
              + (f"; the official code ({a.official}) in the same run" if a.official else
                 "; official code not timed (--official DIR)"))
        print(f"{'workload':<36} {'eager img/s':>22} {'compiled img/s':>22} {'speed-up':>9} {'compile s':>10} "
              f"{'official here':>22}  official (issue)")
        work = [(f"evaluation {net}, {aug}", f"train/{net}/{aug}", key, net,
                 ["--network", net, "--n", str(n_train), "--augmentation", aug,
                  "--epochs", str(epochs if net == "convnet" or a.quick else 2)])
                for net, aug, key in (("convnet", "combined", "eval_img_s"), ("resnet18_bn", "combined", "eval_img_s"),
                                      ("convnet", "none", "eval_plain_img_s"), ("resnet18_bn", "none", "eval_plain_img_s"))]
        work.append(("expert training convnet_bn", "expert/convnet_bn", "expert_img_s", "convnet_bn",
                     ["--network", "convnet_bn", "--n", str(n_expert), "--batch", "256", "--augmentation", "none",
                      "--epochs", str(max(1, epochs - 1)), "--expert"]))
        for label, row, key, net, args in work:
            base, args = ["train", *args], ["train", *args] + (["--width", str(width)] if a.quick else [])
            eager = _repeat(args, reps, ("img_s",))
            comp = _repeat(args + ["--compile"], reps, ("img_s", "warmup_s"))
            speedup = _stats([comp["img_s"]["median"] / eager["img_s"]["median"]])
            rows[row] = {"eager": eager, "compiled": comp, "speedup": speedup}
            off = None
            if a.official is not None:
                off = _repeat([str(a.official), *base], reps, ("img_s",), module="benchmarks.official")
                rows[row]["official"] = off
            print(f"{label:<36} {_fmt(eager['img_s'], 1):>22} {_fmt(comp['img_s'], 1):>22} {speedup['median']:>8.2f}x "
                  f"{comp['warmup_s']['median']:>10.0f} {_fmt(off['img_s'] if off else None, 1):>22}  "
                  f"{OFFICIAL[key][net]}")
            if key != "eval_plain_img_s":
                figures[f"{key}/{net}"] = comp["img_s"]
                if off:
                    for mode, r in (("eager", eager), ("compiled", comp)):
                        figures[f"vs_official/{mode}/{key}/{net}"] = _stats([r["img_s"]["median"] /
                                                                             off["img_s"]["median"]])

    if "book" in a.only:
        b = book_seconds()
        print("\nmake book, every result cached: " + (f"{b['seconds']:.0f} s ({b['profile']} profile, {b['date']})"
                                                     if b else "not measured yet (run `make book`; it records its time)"))
        if b:
            figures["book_cached_s"] = b["stats"]
            rows["book"] = b

    print("\n" + f"{'target':<78} {'ours':>10} {'bound':>10}  met")
    results = []
    for key, desc, cmp, bound in TARGETS:
        s = figures.get(key)
        ok = met(s["median"] if s else None, cmp, bound)
        results.append({"key": key, "description": desc, "comparison": cmp, "bound": bound,
                        "value": s, "met": ok})
        print(f"{desc:<78} {_value(s):>10} "
              f"{cmp} {bound:<7.2f}  {'yes' if ok else 'no' if ok is False else 'not measured'}")
    k = sum(r["met"] is True for r in results)
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps({
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "quick": a.quick, "reps": reps,
        "torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
        "config": {"width": width, "syn_steps": steps, "constant_syn_steps": const_steps, "n_train": n_train,
                   "n_expert": n_expert}, "targets": results, "rows": rows}, indent=1) + "\n")
    print(f"\nwritten {a.json.relative_to(ROOT) if a.json.is_relative_to(ROOT) else a.json}")
    print(f"targets met: {k}/{len(TARGETS)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
