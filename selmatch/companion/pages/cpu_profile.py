"""Page 08, how the cpu profile was chosen: the evaluation budget and the distillation pilots (figures,
tables, conclusions).
"""
from __future__ import annotations

import matplotlib.pyplot as plt

from ..report import ratio, show, table


def budget_figure(big: list[dict], small: list[dict], ctx):
    """Accuracy of random subsets against the evaluation budget (left: large subsets, by budget and lr;
    right: small subsets, by the epoch cap)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for (ipc, lr) in sorted({(r["ipc"], r["lr"]) for r in big}):
        pts = sorted((r["budget"], r["val"]) for r in big if r["ipc"] == ipc and r["lr"] == lr)
        axes[0].plot(*zip(*pts), "-o", label=f"IPC {ipc} ({ratio(ctx.dataset, ipc)}), lr {lr:g}")
    axes[0].set(xscale="log", xlabel="budget E (passes over the training set's worth of images)",
                ylabel="validation accuracy (%)", title="random subsets: budget")
    for (ipc, lr) in sorted({(r["ipc"], r["lr"]) for r in small}):
        pts = sorted((r["max_epochs"], r["val"]) for r in small if r["ipc"] == ipc and r["lr"] == lr)
        axes[1].plot(*zip(*pts), "-o", label=f"IPC {ipc} ({ratio(ctx.dataset, ipc)}), lr {lr:g}")
    axes[1].set(xscale="log", xlabel="epochs (the cap binds for small subsets)", ylabel="validation accuracy (%)",
                title="small random subsets: epochs")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plateau(points: list[tuple[float, float]], gain: float = 1.0) -> float | None:
    """The smallest budget from which no larger budget adds ``gain`` points or more; None if accuracy still
    rises by that much at the largest budget (no plateau within the range tried)."""
    points = sorted(points)
    for i, (b, acc) in enumerate(points[:-1]):
        if max(a for _, a in points[i + 1:]) - acc < gain:
            return b
    return None


def _plateau_words(points, prefix: str = "", unit: str = "") -> str:
    p = plateau(points)
    return (f"no larger budget adds a point from {prefix}{p:g}{unit}" if p is not None
            else "accuracy still rises by a point or more at the largest budget tried")


def budget_conclusions(big: list[dict], small: list[dict], ctx, design) -> None:
    out = []
    for (ipc, lr) in sorted({(r["ipc"], r["lr"]) for r in big}):
        pts = sorted((r["budget"], r["val"]) for r in big if r["ipc"] == ipc and r["lr"] == lr)
        out.append(f"- IPC {ipc} ({ratio(ctx.dataset, ipc)}), lr {lr:g}: "
                   + ", ".join(f"E = {b:g}: {a:.1f} %" for b, a in pts)
                   + f"; {_plateau_words(pts, prefix='E = ')}.")
    for (ipc, lr) in sorted({(r["ipc"], r["lr"]) for r in small}):
        pts = sorted((r["max_epochs"], r["val"]) for r in small if r["ipc"] == ipc and r["lr"] == lr)
        out.append(f"- IPC {ipc} ({ratio(ctx.dataset, ipc)}), lr {lr:g}: " + ", ".join(f"{b} epochs: {a:.1f} %" for b, a in pts)
                   + f"; {_plateau_words(pts, unit=' epochs')}.")
    out.append(f"\nValidation half (the split that chose), one run per point with the same evaluation seed. **Chosen:** lr "
               f"{design.eval.lr:g}, budget E = {design.eval_full_epochs:g}, at most {design.eval_max_epochs} and at "
               f"least {design.eval_min_epochs} epochs, {design.runs} runs per evaluated set.")
    show("\n".join(out))


def describe_change(change: dict) -> str:
    """A short name for a change to the experts: 'as before' or 'max_per_class=all, model=convnet'."""
    if not change:
        return "as before"
    return ", ".join(f"{k}={'all' if v is None and k == 'max_per_class' else v}" for k, v in sorted(change.items()))


def setting_table(preset, title: str) -> None:
    e, d = preset.expert, preset.distill
    table([[f"{e.num_experts} × {e.model} (width {e.width}), {e.epochs} epochs, lr {e.lr:g}, batch {e.batch_size}, "
            f"{'all images' if e.max_per_class is None else f'{e.max_per_class} images per class'}, augmentation {e.augmentation}",
            f"{d.iterations} iterations × {d.syn_steps} student steps of {d.batch_syn} images; expert_epochs "
            f"{d.expert_epochs}, start epoch < {d.max_start_epoch}; lr_img {d.lr_img:g}, syn_lr from {d.lr_init:g}"]],
          [f"experts ({title})", "distillation"])


def _curve(res: dict) -> list[tuple[int, float]]:
    """Validation accuracy (the split that chose the profile) against iteration."""
    return sorted((int(k), v["accuracy"]["val"]) for k, v in res["evals"].items())


def pilot_figure(pilots: list[dict], ctx):
    ipcs = sorted({p["ipc"] for p in pilots})
    fig, axes = plt.subplots(2, len(ipcs), figsize=(4.8 * len(ipcs), 6), squeeze=False)
    for col, ipc in enumerate(ipcs):
        for p in (p for p in pilots if p["ipc"] == ipc):
            axes[0][col].plot(*zip(*_curve(p)), "-o", label=p["experts"])
            loss = p["loss"]
            w = max(1, len(loss) // 20)
            smooth = [sum(loss[i:i + w]) / len(loss[i:i + w]) for i in range(0, len(loss), w)]
            axes[1][col].plot([i + w / 2 for i in range(0, len(loss), w)], smooth, label=p["experts"])
        axes[0][col].set(title=f"MTT, IPC {ipc} ({ratio(ctx.dataset, ipc)})", xlabel="distillation iteration",
                         ylabel="validation accuracy (%, 1 run)")
        axes[1][col].set(xlabel="distillation iteration", ylabel="matching loss (mean over a window)")
        for ax in (axes[0][col], axes[1][col]):
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, title="experts", title_fontsize=7)
    fig.tight_layout()
    return fig


def pilot_table(pilots: list[dict], ctx) -> None:
    rows = []
    for p in pilots:
        c = _curve(p)
        rows.append([f"{p['ipc']} ({ratio(ctx.dataset, p['ipc'])})", p["experts"], f"{c[0][1]:.1f}", f"{c[-1][1]:.1f}",
                     f"{c[-1][1] - c[0][1]:+.1f}", f"{p['loss'][0]:.2f} → {sum(p['loss'][-10:]) / len(p['loss'][-10:]):.2f}",
                     f"{p['syn_lr']:.3f}", "–" if p.get("moved_median") is None else f"{100 * p['moved_median']:.0f} %",
                     f"{p['distill_seconds'] / 60:.1f}"])
    table(rows, ["IPC", "experts", "iteration 0 (val %)", f"iteration {_curve(pilots[0])[-1][0]} (val %)", "gain (points)",
                 "loss (first → last 10)", "syn_lr", "images moved (median ‖x−x₀‖/‖x₀‖)", "minutes"])


def design_conclusions(pilots: list[dict], ctx, design) -> None:
    """Which expert set improved the images most at each IPC, and the profile before and after."""
    from ...settings import FIRST_DESIGN, get_profile

    out = []
    for ipc in sorted({p["ipc"] for p in pilots}):
        rows = [(p["experts"], _curve(p)) for p in pilots if p["ipc"] == ipc]
        best = max(rows, key=lambda r: r[1][-1][1] - r[1][0][1])
        out.append(f"- **IPC {ipc} ({ratio(ctx.dataset, ipc)})**: the largest gain over the initialisation comes with "
                   f"experts *{best[0]}*: {best[1][0][1]:.1f} → {best[1][-1][1]:.1f} % "
                   f"({best[1][-1][1] - best[1][0][1]:+.1f} points on the validation half, one run) in {best[1][-1][0]} iterations; "
                   + "; ".join(f"*{name}*: {c[-1][1] - c[0][1]:+.1f}" for name, c in rows if name != best[0]) + ".")
        if all(c[-1][1] < c[0][1] for _, c in rows):
            out.append(f"  At IPC {ipc} every expert set *lowers* accuracy below the real images it started from. "
                       "Why is open: fewer student steps per image as the set grows, too short or too few experts, "
                       "too high an image learning rate are candidate explanations, and hypotheses until a "
                       "distillation-budget sweep tests them (the ablations page runs one).")
    old = FIRST_DESIGN.get(ctx.profile, get_profile(ctx.profile))
    show("\n".join(out))
    rows = [["evaluation", f"lr {old.eval.lr:g}, E = {old.eval_full_epochs:g}, {old.eval_min_epochs}–{old.eval_max_epochs} epochs, "
             f"{old.runs} runs", f"lr {design.eval.lr:g}, E = {design.eval_full_epochs:g}, "
             f"{design.eval_min_epochs}–{design.eval_max_epochs} epochs, {design.runs} runs"]]
    for what, a, b in (("experts", old.distillation.expert, design.distillation.expert),
                       ("distillation", old.distillation.distill, design.distillation.distill)):
        changed = [f"{k} {getattr(a, k)} → {getattr(b, k)}" for k in a.__dataclass_fields__ if getattr(a, k) != getattr(b, k)]
        rows.append([what, "", "; ".join(changed) or "unchanged"])
    table(rows, ["part", f"`{ctx.profile}` as first built", "as the pilots chose it (the profile now)"])
