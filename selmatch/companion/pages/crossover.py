"""Page 09, the crossover: where distillation stops paying, MTT against its own random start and the best
window per IPC (data, figures, table, conclusions).
"""
from __future__ import annotations

import matplotlib.pyplot as plt

from ..paper import fmt, paper_value, small_ipc_value
from ..report import ratio, show, table
from ..stats import paired, phrase
from ..units import best_windows, Context, download_path, random_eval, run, selmatch_run, synset_download


def iteration_figure(rows: list[dict], ctx, per_row: int = 2):
    """MTT's accuracy against distillation iteration (one run per point), beside its initialisation's band, at every
    IPC the page ran (where distillation helps and where it harms alike)."""
    n_rows = -(-len(rows) // per_row)
    cols = min(per_row, len(rows))
    fig, axes = plt.subplots(n_rows, cols, figsize=(4.2 * cols, 3.4 * n_rows), squeeze=False)
    for ax in axes.flat[len(rows):]:
        ax.set_visible(False)
    for ax, r in zip(axes.flat, rows):
        pts = sorted((int(k), v["accuracy"]["mean"]) for k, v in r["MTT"]["evals"].items())
        ax.plot(*zip(*pts), "-o", label="MTT (1 run per point)")
        m, s = r["Random"]["mean"], r["Random"]["std"]
        ax.axhspan(m - s, m + s, color="0.85", label=f"its initialisation (n = {len(r['Random']['runs'])})")
        ax.axhline(m, color="0.5", lw=1)
        ax.set(title=f"IPC {r['ipc']} ({ratio(ctx.dataset, r['ipc'])})", xlabel="distillation iteration",
               ylabel="test accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


CROSSOVER = ("Random", "Sliding window", "MTT")


def crossover_figure(rows: list[dict], ctx):
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.5))
    ipcs = [r["ipc"] for r in rows]
    for m, style in zip(CROSSOVER, (":^", "-.d", "--s")):
        axes[0].errorbar(ipcs, [_final(r[m])["mean"] for r in rows], yerr=[_final(r[m])["std"] for r in rows], fmt=style,
                         capsize=3, label=m)
    axes[0].set(xscale="log", xlabel="images per class", ylabel="test accuracy (%)", title="accuracy")
    for base, style in (("Random", "-o"), ("Sliding window", "-s")):
        ps = [paired(_final(r["MTT"]), r[base]) for r in rows]
        axes[1].errorbar(ipcs, [p.diff for p in ps], yerr=[[p.diff - p.low for p in ps], [p.high - p.diff for p in ps]],
                         fmt=style, capsize=3, label=f"MTT − {base}")
    axes[1].axhline(0, color="k", lw=0.8)
    axes[1].set(xscale="log", xlabel="images per class", ylabel="paired difference (points, 95 % interval)",
                title="distillation's advantage")
    for ax in axes:
        ax.set_xticks(ipcs, [str(i) for i in ipcs])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _final(r: dict) -> dict:
    return r["final"] if "final" in r else r


def crossover_table(rows: list[dict], ctx) -> None:
    out = []
    for r in rows:
        mtt = _final(r["MTT"])
        rt = ratio(ctx.dataset, r["ipc"])
        paper = {m: small_ipc_value(m, ctx.dataset, r["ipc"]) or paper_value(m, ctx.dataset, rt) for m in ("Random", "MTT")}
        out.append([f"{r['ipc']} ({rt})", fmt(r["Random"]["mean"], r["Random"]["std"]),
                    f"{fmt(r['Sliding window']['mean'], r['Sliding window']['std'])} (β {r['Sliding window']['beta']})",
                    fmt(mtt["mean"], mtt["std"]), len(mtt["runs"]),
                    f"{r['MTT']['syn_lr']:.3f}", "–" if r["MTT"].get("moved_median") is None
                    else f"{100 * r['MTT']['moved_median']:.0f} %",
                    fmt(*paper["Random"]) if paper["Random"] else "–", fmt(*paper["MTT"]) if paper["MTT"] else "–"])
    table(out, ["IPC (ratio)", f"random (its initialisation), {ctx.profile}", f"best window (val), {ctx.profile}",
                f"MTT, {ctx.profile}", "runs", "learned syn_lr", "images moved",
                "random, paper*", "MTT, paper*"])
    show("\\* IPC 1–50: MTT's paper (ConvNet-128, ZCA); IPC 250 and up: the SelMatch paper (ResNet-18-BN). Full-scale "
         "numbers, for orientation: compare trends, not values.")


def crossover_conclusions(rows: list[dict], ctx) -> None:
    out = []
    for r in rows:
        mtt = _final(r["MTT"])
        out.append(f"- **IPC {r['ipc']} ({ratio(ctx.dataset, r['ipc'])})**: "
                   f"{phrase(paired(mtt, r['Random']), 'MTT', 'its random initialisation')}; "
                   f"{phrase(paired(mtt, r['Sliding window']), 'MTT', 'the best window')}.")
    first, last = rows[0], rows[-1]
    a = paired(_final(first["MTT"]), first["Random"])
    b = paired(_final(last["MTT"]), last["Random"])
    shrinks = a.low > b.high
    out.append(f"\n**Does distillation's advantage shrink as IPC grows?** Over random selection it is {a} points at IPC "
               f"{first['ipc']} and {b} at IPC {last['ipc']}: "
               + ("the intervals do not overlap, so it shrinks (the crossover the paper starts from)."
                  if shrinks else "the intervals overlap, so this build cannot say that it shrinks."))
    show("\n".join(out))


def crossover(ctx: Context, ipcs: list[int], betas: list[float], eval_at: list[int]) -> list[dict]:
    """MTT from random real images (DSA evaluation, as MTT's), that initialisation, and the best window, per IPC."""
    window = best_windows(ctx, ipcs, betas)
    records = run([random_eval.job(ctx, ipc) for ipc in ipcs] +
                  [selmatch_run.job(ctx, ipc, 1.0, 0.0, init="random", augmentation="dsa", eval_at=tuple(eval_at))
                   for ipc in ipcs], "random and MTT")
    n = len(ipcs)
    return [{"ipc": ipc, "Random": records[k]["result"], "MTT": records[n + k]["result"],
             "Sliding window": window[ipc]} for k, ipc in enumerate(ipcs)]


def set_megabytes(ctx: Context, ipc: int) -> float:
    """The size of an MTT set at ``ipc`` as 8-bit pixels, in MB (before compression)."""
    import math

    from ...data import DATASETS

    info = DATASETS[ctx.dataset]
    return ipc * info.num_classes * math.prod(info.image_shape) / 1e6


def downloads(ctx: Context, rows: list[dict], download_mb: float) -> list[dict]:
    """MTT's final set at every IPC of the page whose 8-bit pixels fit in ``download_mb`` MB, written as a download
    (:func:`~..units.synset_download`: the same distillation the page evaluates), each with its 8-bit evaluation
    paired with the page's float one."""
    if not download_mb >= 0:
        raise ValueError(f"download_mb={download_mb!r}: the largest download in MB must be a number ≥ 0 "
                         "(0: no downloads)")
    ipcs = [r["ipc"] for r in rows if set_megabytes(ctx, r["ipc"]) <= download_mb]
    records = run([synset_download.job(ctx, ipc, 1.0, 0.0, init="random", augmentation="dsa") for ipc in ipcs],
                  "downloads")
    by = {r["ipc"]: r for r in rows}
    return [{"ipc": ipc, "float": _final(by[ipc]["MTT"]), **rec["result"],
             "path": download_path(ctx, rec["result"]["file"])} for ipc, rec in zip(ipcs, records)]


def downloads_table(files: list[dict], ctx) -> None:
    """One row per download: a link to the file (from the book's root, the folder the page runs in), its size,
    what it holds, how many pixels the 8 bits clipped, and its accuracy paired with the float set's (the same runs
    and seeds)."""
    from pathlib import Path

    out = []
    for f in files:
        path = Path(f["path"]).resolve()
        inside = path.is_relative_to(Path.cwd().resolve())
        link = (f"{{download}}`{f['file']} </{path.relative_to(Path.cwd().resolve()).as_posix()}>`" if inside
                else f"`{path}`")
        d = paired(f["accuracy"], f["float"])
        out.append([f"{f['ipc']} ({ratio(ctx.dataset, f['ipc'])})", link,
                    f"{f['bytes'] / 1e6:.2f}", f"{f['images']} ({f['distilled']} distilled)",
                    f"{100 * f['clipped']:.2f} %", fmt(f["accuracy"]["mean"], f["accuracy"]["std"]), f"{d} ({d.verdict})"])
    table(out, ["IPC (ratio)", "file", "MB", "images", "pixels clipped", f"8-bit set, {ctx.profile} (%)",
                "8-bit − float (points)"])
    show(f"MTT's final sets at `{ctx.profile}` ({ctx.dataset}), as 8-bit pixels with their labels, which images are "
         "distilled and which real image each started from (`source_idx`, indices into the training set). Load one "
         "with `selmatch.load_synset(path)` (normalised float images, as training uses them). The 8-bit set is "
         f"evaluated with the page's runs and seeds (n = {len(files[0]['accuracy']['runs']) if files else 0}) and "
         "paired with the page's MTT row. The download's distillation was computed again for it, so where the two "
         "results were made by different commits (the status page lists each result's), *8-bit − float* also holds "
         "the difference between those runs, not only the rounding. *Pixels clipped* are distilled pixels outside "
         "the real images' range, cut by the 8 bits.")
