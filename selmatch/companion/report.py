"""Presentation helpers for the notebooks: notes, tables and figures from cached results.

Nothing here computes a result; it only formats what :mod:`selmatch.companion.units` returned.
"""
from __future__ import annotations

import matplotlib.pyplot as plt

from ..data import DATASETS
from .paper import fmt, paper_value
from .stats import RULE, paired, phrase

N_TRAIN = {"cifar10": 50_000, "cifar100": 50_000, "tinyimagenet": 100_000, "tinyimagenet-c10": 5_000,
           "mnist5k": 4_000}


def show(markdown: str):
    from IPython.display import Markdown, display

    display(Markdown(markdown))


def ratio(dataset: str, ipc: int) -> str:
    r = 100 * ipc * DATASETS[dataset].num_classes / N_TRAIN[dataset]
    return f"{r:.0f}%" if r >= 1 else f"{r:.1f}%" if r >= 0.1 else f"{r:.2f}%"


def page_commands(notebook: str, profile: str, dataset: str = "cifar10") -> list[tuple[str, str]]:
    """The commands a page prints to rerun itself, as (what it does, command); a test runs each
    (``tests/test_commands.py``)."""
    params = f"{notebook}.{profile}.yaml"
    cmds = [(f"this page's experiment at `{profile}`, into `rerun-{profile}/` (its parameters: "
             f"{{download}}`{params} <../../notebooks/params/{params}>`)", f"selmatch rerun {notebook} --profile {profile}"),
            ("the same, computing only what the committed results lack (here, nothing)",
             f"selmatch rerun {notebook} --profile {profile} --reuse")]
    if dataset == "cifar10":
        cmds.append(("on the original CIFAR-10 (torchvision downloads it when `SELMATCH_DATA` is unset)",
                     f"env -u SELMATCH_DATA selmatch rerun {notebook} --profile {profile} --into rerun-original"))
    if profile != "paper":
        cmds.append(("at the paper's settings, on a GPU (not run here)",
                     f"selmatch rerun {notebook} --profile paper --device cuda"))
    return cmds


def profile_note(ctx, parameters: dict | None = None, notebook: str | None = None) -> None:
    """Which profile, dataset and seed made the page's numbers, the page's parameters (given, or the
    profile's grid in ``selmatch.settings.NOTEBOOK_GRIDS``), and the commands that rerun the page."""
    lines = [f"**Profile `{ctx.profile}`, dataset `{ctx.dataset}`, seed {ctx.seed}.** "
             f"Every number on this page was computed by `selmatch` at this profile on a CPU."]
    if parameters:
        lines.append("Parameters of this page: " + ", ".join(f"`{k} = {v}`" for k, v in parameters.items()) + ".")
    if ctx.dataset == "cifar10":
        lines.append("The CIFAR-10 used here is a JPEG re-encoding of the original (mean absolute error 5.8/255, "
                     "PSNR ≈ 30 dB), restored to the original order.")
    if notebook:
        lines.append("**Rerun this page** (from the repository root; anything not cached needs the data, "
                     "{doc}`../data`):\n\n" + "\n".join(f"- {what}: `{cmd}`"
                                                         for what, cmd in page_commands(notebook, ctx.profile, ctx.dataset)))
    if ctx.profile != "paper":
        lines.append("Numbers at this scale are not comparable in absolute value with the paper's ResNet-18 "
                     "results; compare trends, which the text discusses.")
    show("\n\n".join(lines))


def table(rows: list[list], header: list[str]) -> None:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    show("\n".join(out))


def window_curves(rows: list[dict], rand: dict, ctx):
    ipcs = sorted({r["ipc"] for r in rows})
    fig, axes = plt.subplots(1, len(ipcs), figsize=(4.2 * len(ipcs), 3.4), squeeze=False)
    for ax, ipc in zip(axes[0], ipcs):
        for mode, style in (("fraction", "-o"), ("ipc", "--s")):
            pts = sorted((r["beta"], r["mean"], r["std"]) for r in rows if r["ipc"] == ipc and r["start_mode"] == mode)
            if pts:
                b, m, s = zip(*pts)
                ax.errorbar(b, m, yerr=s, fmt=style, capsize=3, label=f"β as {'class fraction' if mode == 'fraction' else 'ipc multiple'}")
        rm, rs = rand[ipc]["mean"], rand[ipc]["std"]
        ax.axhspan(rm - rs, rm + rs, color="0.85", label="random")
        ax.axhline(rm, color="0.5", lw=1)
        ax.set(title=f"IPC {ipc} ({ratio(ctx.dataset, ipc)})", xlabel="β (window start)", ylabel="test accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def best_by_val(rows: list[dict]) -> dict:
    """The row with the best validation accuracy (ties: the smaller beta)."""
    return max(rows, key=lambda r: (r["val"], -r.get("beta", 0)))


def best_window_table(rows: list[dict], rand: dict, ctx) -> None:
    out = []
    for ipc in sorted({r["ipc"] for r in rows}):
        cands = [r for r in rows if r["ipc"] == ipc and r["start_mode"] == "fraction"]
        if not cands:
            continue
        best = best_by_val(cands)
        rt = ratio(ctx.dataset, ipc)
        pw, pr = paper_value("Sliding window", ctx.dataset, rt), paper_value("Random", ctx.dataset, rt)
        out.append([f"{ipc} ({rt})", best["beta"], fmt(best["mean"], best["std"]), fmt(rand[ipc]["mean"], rand[ipc]["std"]),
                    fmt(*pw) if pw else "–", fmt(*pr) if pr else "–"])
    table(out, ["IPC (ratio)", "best β (val)", "window, ours", "random, ours", "window, paper", "random, paper"])


def line_plot(ax, xs, means, stds, label, style="-o"):
    ax.errorbar(xs, means, yerr=stds, fmt=style, capsize=3, label=label)


def score_histograms(res: dict):
    names = res["names"]
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 2.8), squeeze=False)
    for ax, name in zip(axes[0], names):
        edges, counts = res["edges"][name], res["hist"][name]
        ax.stairs(counts, edges, fill=True, alpha=0.7)
        ax.set(title=name, xlabel="hardness (higher = harder)", ylabel="images")
    fig.tight_layout()
    return fig


def image_grid(easy, hard, classes: list[str], per_class: int, title: str):
    """Two rows of thumbnails per class: easiest (top) and hardest (bottom)."""
    n = len(classes)
    fig, axes = plt.subplots(2, n, figsize=(0.9 * n, 1.8 * per_class * 0.9 + 0.8))
    for c in range(n):
        for row, imgs in enumerate((easy, hard)):
            block = imgs[c * per_class:(c + 1) * per_class]
            strip = block.reshape(-1, *block.shape[2:]) if block.ndim == 4 else block
            axes[row, c].imshow(strip.squeeze(), cmap="gray" if strip.shape[-1] == 1 else None)
            axes[row, c].set_xticks([])
            axes[row, c].set_yticks([])
        axes[0, c].set_title(classes[c][:10], fontsize=7)
    axes[0, 0].set_ylabel("easiest", fontsize=8)
    axes[1, 0].set_ylabel("hardest", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def coverage_vs_ipc(rows: list[dict], ctx):
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.3))
    ipcs = [r["ipc"] for r in rows]
    for ax, part in zip(axes, ("all", "easy", "hard")):
        for name, style in (("random", ":^"), ("window", "-.d"), ("MTT", "--s"), ("SelMatch", "-o")):
            ax.plot(ipcs, [r[name][part] for r in rows], style, label=name)
        ax.set(title=f"{'all real images' if part == 'all' else part + ' half'}", xlabel="IPC", ylabel="coverage")
        ax.set_xticks(ipcs)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def coverage_vs_iteration(trace: dict, ipc: int, ctx):
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.3))
    for name, res in trace.items():
        its = sorted(int(k) for k in res["evals"])
        for ax, part in zip(axes, ("easy", "hard")):
            ax.plot(its, [res["evals"][str(i)]["coverage"][part] for i in its], "-o", label=name)
            ax.set(title=f"{part} half, IPC {ipc}", xlabel="distillation iteration", ylabel="coverage")
            ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def alpha_curves(rows: list[dict], ctx):
    fig, ax = plt.subplots(figsize=(5, 3.3))
    for ipc in sorted({r["ipc"] for r in rows}):
        pts = sorted((r["alpha"], r["mean"], r["std"]) for r in rows if r["ipc"] == ipc)
        a, m, s = zip(*pts)
        ax.errorbar(a, m, yerr=s, fmt="-o", capsize=3, label=f"IPC {ipc} ({ratio(ctx.dataset, ipc)})")
    ax.set(xlabel="α (fraction of the window distilled)", ylabel="test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


METHODS = ("Random", "Sliding window", "MTT", "SelMatch")


# Subsets whose paper numbers are for the full dataset: shown for orientation, under their own header.
ORIENTATION = {"tinyimagenet-c10": ("tinyimagenet", "paper, all 200 classes (%, orientation only)")}


def main_table(results: dict, ctx) -> None:
    paper_ds, paper_header = ORIENTATION.get(ctx.dataset, (ctx.dataset, "paper (%)"))
    rows = []
    for ipc, by_method in results.items():
        rt = ratio(ctx.dataset, ipc)
        for m in METHODS:
            r = by_method[m]
            p = paper_value(m, paper_ds, rt)
            extra = f"β {r['beta']} (val)" if m == "Sliding window" else \
                (f"α {r['alpha']} ({'fixed' if r.get('alpha_fixed') else 'val'})" if m == "SelMatch" else "")
            rows.append([f"{ipc} ({rt})", m, fmt(r["mean"], r["std"]), len(r["runs"]), extra, fmt(*p) if p else "–"])
    table(rows, ["IPC (ratio)", "method", f"ours, {ctx.profile} (%)", "runs", "window / α (how set)", paper_header])


COMPARISONS = (("SelMatch", "MTT"), ("SelMatch", "Sliding window"), ("Sliding window", "Random"), ("MTT", "Random"))


def differences_table(results: dict, ctx) -> None:
    """The paper's four comparisons per ratio: our paired difference with its interval and verdict, the
    paper's difference beside it."""
    paper_ds, _ = ORIENTATION.get(ctx.dataset, (ctx.dataset, ""))
    rows = []
    for a, b in COMPARISONS:
        for ipc, by in results.items():
            rt = ratio(ctx.dataset, ipc)
            pa, pb = paper_value(a, paper_ds, rt), paper_value(b, paper_ds, rt)
            d = paired(by[a], by[b])
            rows.append([f"{a} − {b}", f"{ipc} ({rt})", str(d), d.verdict,
                         f"{pa[0] - pb[0]:+.1f}" if pa and pb else "–"])
    table(rows, ["difference", "IPC (ratio)", f"ours, {ctx.profile} (points, 95 % interval)", "verdict",
                 "paper (points)" if paper_ds == ctx.dataset else "paper, all classes (orientation)"])
    show(f"*Verdict rule:* {RULE}")


def test_size_note(results: dict, ctx) -> None:
    """The size of the test and validation halves and what one test image is worth, in points."""
    r = next(iter(results.values()))["Random"]
    n_test, n_val = r.get("n_test"), r.get("n_val")
    if n_test:
        show(f"The test half has {n_test} images (the validation half {n_val}): one test image is "
             f"{100 / n_test:.2f} points of accuracy, and the runs per result are {len(r['runs'])}.")


def distillation_table(results: dict, ctx) -> None:
    """How each distillation went: matching loss at the start and at the end, the learned step size, and
    how far the distilled images moved from their real initialisation."""
    def num(v, f):
        return "–" if v is None else format(v, f)

    rows = []
    for ipc, by in results.items():
        for m in ("MTT", "SelMatch"):
            r = by[m]
            rows.append([f"{ipc} ({ratio(ctx.dataset, ipc)})", m, f"{num(r.get('loss_first'), '.2f')} → "
                         f"{num(r.get('loss_last5'), '.2f')}", num(r.get("syn_lr"), ".3f"),
                         "–" if r.get("moved_median") is None else f"{100 * r['moved_median']:.0f} %"])
    table(rows, ["IPC (ratio)", "method", "matching loss (first → mean of last 5)", "learned syn_lr",
                 "images moved (median ‖x−x₀‖/‖x₀‖)"])


def main_figure(results: dict, ctx):
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    ipcs = list(results)
    for m, style in zip(METHODS, (":^", "-.d", "--s", "-o")):
        ax.errorbar(ipcs, [results[i][m]["mean"] for i in ipcs], yerr=[results[i][m]["std"] for i in ipcs],
                    fmt=style, capsize=3, label=m)
    ax.set(xlabel="images per class", ylabel="test accuracy (%)", title=f"{ctx.dataset}, profile {ctx.profile}")
    ax.set_xticks(ipcs)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def window_conclusions(rows: list[dict], rand: dict, ctx) -> None:
    """Sentences computed from the sweep: best window vs random, the hardest window, the two readings."""
    out = []
    for ipc in sorted(rand):
        frac = [r for r in rows if r["ipc"] == ipc and r["start_mode"] == "fraction"]
        code = [r for r in rows if r["ipc"] == ipc and r["start_mode"] == "ipc"]
        if not frac:
            continue
        best, r = best_by_val(frac), rand[ipc]
        hardest = min(frac, key=lambda x: x["beta"])
        rt = ratio(ctx.dataset, ipc)
        line = (f"- **IPC {ipc} ({rt})**: the best window (β = {best['beta']}, chosen on the "
                f"validation half) reaches {fmt(best['mean'], best['std'])} % against random selection's "
                f"{fmt(r['mean'], r['std'])} % (n = {len(r['runs'])} runs each): "
                f"{phrase(paired(best, r), 'the window', 'random')}; the hardest window "
                f"(β = {hardest['beta']}, {fmt(hardest['mean'], hardest['std'])} %): "
                f"{phrase(paired(hardest, r), 'the hardest window', 'random')}.")
        pw, pr = paper_value("Sliding window", ctx.dataset, rt), paper_value("Random", ctx.dataset, rt)
        if pw and pr:
            line += f" The paper (ResNet-18-BN): window {fmt(*pw)} % against random {fmt(*pr)} %."
        if code:
            best_code = best_by_val(code)
            line += (f" Read as the official code does (start = int(ipc·β)), the best window reaches "
                     f"{fmt(best_code['mean'], best_code['std'])} %.")
        out.append(line)
    show("\n".join(out) + f"\n\n*Verdict rule:* {RULE}")


def _compare(a: dict, b: dict) -> str:
    """The verdict on the paired difference ``a - b`` (:mod:`selmatch.companion.stats`), with its interval:
    'above (+1.2 [+0.3, +2.1])', 'below (...)' or 'not distinguishable from (...)'."""
    p = paired(a, b)
    word = {"above": "above", "below": "below", "no difference": "not distinguishable from"}[p.verdict]
    return f"{word} ({p})"


def coverage_conclusions(rows: list[dict], trace: dict, ipc: int, ctx) -> None:
    """Sentences computed from the coverage study: SelMatch against MTT on each half, and the trend
    of coverage during distillation."""
    out = []
    for r in rows:
        sm, mtt, win = r["SelMatch"], r["MTT"], r["window"]
        acc_sm, acc_mtt = r["acc"]["SelMatch"], r["acc"]["MTT"]
        out.append(
            f"- **IPC {r['ipc']} ({ratio(ctx.dataset, r['ipc'])})**: coverage of the hard half is {sm['hard']:.3f} for "
            f"SelMatch against {mtt['hard']:.3f} for MTT ({'higher' if sm['hard'] > mtt['hard'] else 'lower'}), and "
            f"{sm['easy']:.3f} against {mtt['easy']:.3f} on the easy half; the window alone covers {win['hard']:.3f} / "
            f"{win['easy']:.3f} (hard / easy), a random subset {r['random']['hard']:.3f} / {r['random']['easy']:.3f}. "
            f"Accuracy on the hard test half: SelMatch {fmt(acc_sm['groups']['hard']['mean'], acc_sm['groups']['hard']['std'])} %, "
            f"MTT {fmt(acc_mtt['groups']['hard']['mean'], acc_mtt['groups']['hard']['std'])} % "
            f"(n = {len(acc_sm['groups']['hard']['runs'])}): "
            f"{phrase(paired(acc_sm['groups']['hard'], acc_mtt['groups']['hard']), 'SelMatch', 'MTT')}; on the easy half "
            f"{phrase(paired(acc_sm['groups']['easy'], acc_mtt['groups']['easy']), 'SelMatch', 'MTT')}.")
    for name, res in trace.items():
        its = sorted(int(k) for k in res["evals"])
        if len(its) >= 2:
            first, last = res["evals"][str(its[0])]["coverage"], res["evals"][str(its[-1])]["coverage"]
            out.append(f"- **{name}, IPC {ipc}**: from iteration {its[0]} to {its[-1]}, coverage of the hard half goes "
                       f"{first['hard']:.3f} → {last['hard']:.3f} and of the easy half {first['easy']:.3f} → "
                       f"{last['easy']:.3f}.")
    show("\n".join(out) + "\n\nCoverage is one number per set (one selection or distilled set, one feature network, "
         "n = 1): it has no spread over runs, so a difference in the third decimal is not tested against noise. "
         f"Accuracies are means ± std over the runs shown. *Verdict rule:* {RULE}")


def ablation_conclusions(alpha_rows: list[dict], aug: dict, init: dict, ipc: int, ctx) -> None:
    """Sentences computed from the ablations: the best α per IPC against α = 0 and α = 1, and the
    augmentation and initialisation comparisons at ``ipc``."""
    out = []
    for i in sorted({r["ipc"] for r in alpha_rows}):
        rows = {r["alpha"]: r for r in alpha_rows if r["ipc"] == i}
        best = best_by_val(list(rows.values()))
        line = (f"- **α, IPC {i} ({ratio(ctx.dataset, i)})**: the validation half picks α = {best['alpha']} "
                f"({fmt(best['mean'], best['std'])} % on the test half)")
        for a, what in ((0.0, "the window alone"), (1.0, "distilling everything")):
            if a in rows and a != best["alpha"]:
                line += (f"; {what} (α = {a:g}) gives {fmt(rows[a]['mean'], rows[a]['std'])} %, and the chosen α is "
                         f"{_compare(best, rows[a])} it")
        out.append(line + ".")
    if aug:
        best_aug = max(aug, key=lambda k: aug[k]["mean"])
        out.append(f"- **Augmentation at evaluation, IPC {ipc}**: "
                   + ", ".join(f"{k} {fmt(v['mean'], v['std'])} %" for k, v in aug.items())
                   + f"; {best_aug} is highest" + ("" if best_aug == "combined" else
                                                   f" (combined is {_compare(aug['combined'], aug[best_aug])} it)") + ".")
    if init:
        w, r = init["window"], init["random"]
        out.append(f"- **Initialisation, IPC {ipc}**: window {fmt(w['mean'], w['std'])} % against random "
                   f"{fmt(r['mean'], r['std'])} % — the window is {_compare(w, r)} random.")
    show("\n".join(out) + f"\n\n*Verdict rule:* {RULE}")


def main_conclusions(results: dict, ctx) -> None:
    """Sentences computed from the main table: the ranking per ratio and SelMatch against each method,
    with the paper's ranking beside ours."""
    out = []
    for ipc, by in results.items():
        rt = ratio(ctx.dataset, ipc)
        order = sorted(METHODS, key=lambda m: -by[m]["mean"])
        line = f"- **IPC {ipc} ({rt})**: ours rank " + " > ".join(order)
        paper = {m: paper_value(m, ctx.dataset, rt) for m in METHODS}
        if all(paper.values()):
            line += "; the paper's rank " + " > ".join(sorted(METHODS, key=lambda m: -paper[m][0]))
        sm = by["SelMatch"]
        line += ". SelMatch is " + ", ".join(f"{_compare(sm, by[m])} {m}" for m in METHODS if m != "SelMatch") + "."
        out.append(line)
    show("\n".join(out) + f"\n\n*Verdict rule:* {RULE}")


# ----------------------------------------------------------------------------- the cpu profile's pilots

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
    from ..settings import get_profile

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
                       "distillation-budget sweep tests them (none has run at this profile yet).")
    old = get_profile(ctx.profile)
    show("\n".join(out))
    rows = [["evaluation", f"lr {old.eval.lr:g}, E = {old.eval_full_epochs:g}, {old.eval_min_epochs}–{old.eval_max_epochs} epochs, "
             f"{old.runs} runs", f"lr {design.eval.lr:g}, E = {design.eval_full_epochs:g}, "
             f"{design.eval_min_epochs}–{design.eval_max_epochs} epochs, {design.runs} runs"]]
    for what, a, b in (("experts", old.distillation.expert, design.distillation.expert),
                       ("distillation", old.distillation.distill, design.distillation.distill)):
        changed = [f"{k} {getattr(a, k)} → {getattr(b, k)}" for k in a.__dataclass_fields__ if getattr(a, k) != getattr(b, k)]
        rows.append([what, "", "; ".join(changed) or "unchanged"])
    table(rows, ["part", f"`{ctx.profile}` as built so far", "redesigned"])


# ----------------------------------------------------------------------------- distillation against selection

def iteration_figure(rows: list[dict], ctx, max_ipc: int = 50):
    """MTT's accuracy against distillation iteration (one run per point), beside its initialisation's band."""
    small = [r for r in rows if r["ipc"] <= max_ipc] or rows[:1]
    fig, axes = plt.subplots(1, len(small), figsize=(4 * len(small), 3.2), squeeze=False)
    for ax, r in zip(axes[0], small):
        pts = sorted((int(k), v["accuracy"]["mean"]) for k, v in r["MTT"]["evals"].items())
        ax.plot(*zip(*pts), "-o", label="MTT (1 run per point)")
        m, s = r["Random"]["mean"], r["Random"]["std"]
        ax.axhspan(m - s, m + s, color="0.85", label=f"its initialisation (n = {len(r['Random']['runs'])})")
        ax.axhline(m, color="0.5", lw=1)
        ax.set(title=f"IPC {r['ipc']} ({ratio(ctx.dataset, r['ipc'])})", xlabel="distillation iteration",
               ylabel="test accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


CROSSOVER = ("Random", "Sliding window", "MTT")


def crossover_figure(rows: list[dict], ctx):
    from .stats import paired

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
    from .paper import fmt, small_ipc_value

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
    table(out, [f"IPC (ratio)", f"random (its initialisation), {ctx.profile}", f"best window (val), {ctx.profile}",
                f"MTT, {ctx.profile}", "runs", "learned syn_lr", "images moved",
                "random, paper*", "MTT, paper*"])
    show("\\* IPC 1–50: MTT's paper (ConvNet-128, ZCA); IPC 250 and up: the SelMatch paper (ResNet-18-BN). Full-scale "
         "numbers, for orientation: compare trends, not values.")


def crossover_conclusions(rows: list[dict], ctx) -> None:
    from .stats import paired, phrase

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


# ----------------------------------------------------------------------------- the claims page

def claims_table(claims: list[dict], ctx) -> None:
    """The claims page's table: one row per claim, with a count of verdicts under it."""
    rows = [[c["id"], c["claim"], c["statistic"], f"**{c['verdict']}**", c["paper"], f"{{doc}}`{c['page']}`"]
            for c in claims]
    table(rows, ["", "claim", f"ours ({ctx.profile}, {ctx.dataset})", "verdict", "paper", "page"])
    counts = {v: sum(c["verdict"] == v for c in claims) for v in dict.fromkeys(c["verdict"] for c in claims)}
    show(", ".join(f"{n} {v}" for v, n in counts.items()) + f" — of {len(claims)} claims.")


# ----------------------------------------------------------------------------- the distillation-budget sweep

def distill_budget_table(rows: list[dict], ctx) -> None:
    """MTT and SelMatch at each distillation budget, each against the smallest budget of the same method
    (paired runs), with how far the images moved."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = sorted((r for r in rows if r["method"] == method), key=lambda r: (r["iterations"] * r["syn_steps"],
                                                                                    r["iterations"]))
        base = mine[0]
        for r in mine:
            p = "–" if r is base else str(paired(r, base))
            out.append([method, r["iterations"], r["syn_steps"], r["iterations"] * r["syn_steps"],
                        fmt(r["mean"], r["std"]), p, f"{r['syn_lr']:.3f}",
                        "–" if r.get("moved_median") is None else f"{100 * r['moved_median']:.0f} %"])
    table(out, ["method", "iterations", "syn_steps", "student steps", f"test accuracy ({ctx.profile}, %)",
                "− smallest budget (paired)", "syn_lr", "images moved"])


def distill_budget_conclusions(rows: list[dict], ctx) -> None:
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = sorted((r for r in rows if r["method"] == method), key=lambda r: r["iterations"] * r["syn_steps"])
        if len(mine) < 2:
            continue
        lo, hi = mine[0], mine[-1]
        out.append(f"- **{method}, IPC {lo['ipc']}**: from {lo['iterations']} × {lo['syn_steps']} to "
                   f"{hi['iterations']} × {hi['syn_steps']} student steps, "
                   f"{phrase(paired(hi, lo), 'the largest budget', 'the smallest')}.")
    if out:
        show("\n".join(out) + f"\n\n*Verdict rule:* {RULE}")
