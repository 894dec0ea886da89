"""Page 02, the sliding window: every window start and the random subset per IPC (data, figure, table,
conclusions).
"""
from __future__ import annotations


from ...settings import paper_setting
from ..paper import fmt, paper_value
from ..report import panels, ratio, show, table
from ..stats import RULE, paired, phrase
from ..units import Context, best_on_val, run, random_eval, windows


def window_curves(rows: list[dict], rand: dict, ctx):
    ipcs = sorted({r["ipc"] for r in rows})
    fig, axes = panels(len(ipcs))
    for ax, ipc in zip(axes, ipcs):
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
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def best_window_table(rows: list[dict], rand: dict, ctx) -> None:
    out = []
    for ipc in sorted({r["ipc"] for r in rows}):
        cands = [r for r in rows if r["ipc"] == ipc and r["start_mode"] == "fraction"]
        if not cands:
            continue
        best = best_on_val(cands)
        rt = ratio(ctx.dataset, ipc)
        pw, pr = paper_value("Sliding window", ctx.dataset, rt), paper_value("Random", ctx.dataset, rt)
        out.append([f"{ipc} ({rt})", best["beta"], fmt(best["mean"], best["std"]), fmt(rand[ipc]["mean"], rand[ipc]["std"]),
                    len(best["runs"]), fmt(*pw) if pw else "–", fmt(*pr) if pr else "–"])
    table(out, ["IPC (ratio)", "best β (val)", f"window, {ctx.profile}", f"random, {ctx.profile}", "runs",
                "window, paper", "random, paper"])


def window_conclusions(rows: list[dict], rand: dict, ctx) -> None:
    """Sentences computed from the sweep: best window vs random, the hardest window, the two readings."""
    out = []
    for ipc in sorted(rand):
        frac = [r for r in rows if r["ipc"] == ipc and r["start_mode"] == "fraction"]
        code = [r for r in rows if r["ipc"] == ipc and r["start_mode"] == "ipc"]
        if not frac:
            continue
        best, r = best_on_val(frac), rand[ipc]
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
            best_code = best_on_val(code)
            line += (f" Read as the official code does (start = int(ipc·β)), the best window reaches "
                     f"{fmt(best_code['mean'], best_code['std'])} %.")
        out.append(line)
    show("\n".join(out) + f"\n\n*Verdict rule:* {RULE}")


def paper_betas(dataset: str, ipcs: list[int]) -> dict[int, float]:
    """Per IPC of ``ipcs`` that the official scripts set for ``dataset``, the β they use (a class fraction)."""
    out = {}
    for ipc in ipcs:
        try:
            out[ipc] = paper_setting(dataset, ipc).beta
        except ValueError:          # no official setting at this IPC (or for this dataset)
            pass
    return out


def paper_windows(ctx: Context, ipcs: list[int], score: str = "cscore") -> dict[int, dict]:
    """Per IPC with an official setting, the window at the paper's β (the class-fraction reading); a grid that
    already holds that β reads its cached result."""
    chosen = paper_betas(ctx.dataset, ipcs)
    found = {ipc: windows(ctx, [ipc], [beta], score)[ipc] for ipc, beta in chosen.items()}
    return {ipc: rows[0] for ipc, rows in found.items() if rows}


def paper_beta_table(rows: list[dict], paper: dict[int, dict], ctx) -> None:
    """The window at the paper's β beside the best on validation, paired over the same evaluation seeds."""
    if not paper:
        show(f"The official scripts set β for {ctx.dataset} at none of this grid's IPCs "
             f"({', '.join(str(r) for r in sorted({r['ipc'] for r in rows}))}); there is no paper-β row.")
        return
    out = []
    for ipc, win in sorted(paper.items()):
        best = best_on_val([r for r in rows if r["ipc"] == ipc and r["start_mode"] == "fraction"])
        out.append([f"{ipc} ({ratio(ctx.dataset, ipc)})", win["beta"], fmt(win["mean"], win["std"]), best["beta"],
                    fmt(best["mean"], best["std"]), str(paired(win, best)), paired(win, best).verdict])
    table(out, ["IPC (ratio)", "paper's β", f"window at it, {ctx.profile}", "best β (val)", "best window",
                "paper's − best", "verdict"])


def sliding_window(ctx: Context, ipcs: list[int], betas: list[float], code_betas: list[float] | None,
                   score: str = "cscore", log=print) -> tuple[list[dict], dict]:
    """Every window (both readings of β) and the random subset, per IPC; a window that would run past the
    end of its class is left out (and ``log`` says so)."""
    rand = {ipc: r["result"] for ipc, r in zip(ipcs, run([random_eval.job(ctx, ipc) for ipc in ipcs], "random"))}
    rows = []
    for mode, grid in (("fraction", betas), ("ipc", betas if code_betas is None else code_betas)):
        found = windows(ctx, ipcs, grid, score, mode)
        for ipc in ipcs:
            kept = {r["beta"] for r in found[ipc]}
            for beta in grid:
                if beta not in kept:
                    log(f"skip ipc={ipc} beta={beta} ({mode}): the window runs past the end of its class")
            rows += [{"ipc": ipc, "start_mode": mode, **r} for r in found[ipc]]
    return rows, rand
