"""Page 04, the ablations: α per IPC, the evaluation augmentation, the initialisation and the distillation
budget (data, figures, tables, conclusions).
"""
from __future__ import annotations

import matplotlib.pyplot as plt

from ..paper import fmt
from ..report import _compare, ratio, show, table
from ..stats import RULE, paired, phrase
from ..units import best_on_val, best_windows, Context, run, selmatch_run


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


def ablation_conclusions(alpha_rows: list[dict], aug: dict, init: dict, ipc: int, ctx) -> None:
    """Sentences computed from the ablations: the best α per IPC against α = 0 and α = 1, and the
    augmentation and initialisation comparisons at ``ipc``."""
    out = []
    for i in sorted({r["ipc"] for r in alpha_rows}):
        rows = {r["alpha"]: r for r in alpha_rows if r["ipc"] == i}
        best = best_on_val(list(rows.values()))
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


def _budget_reference(mine: list[dict], ctx) -> dict:
    """The row at the profile's own distillation budget (what the other pages use), else the smallest."""
    d = ctx.setting(mine[0]["ipc"]).distill
    own = [r for r in mine if (r["iterations"], r["syn_steps"]) == (d.iterations, d.syn_steps)]
    return own[0] if own else mine[0]


def _by_budget(rows: list[dict], method: str) -> list[dict]:
    return sorted((r for r in rows if r["method"] == method), key=lambda r: (r["iterations"] * r["syn_steps"], r["iterations"]))


def distill_budget_table(rows: list[dict], ctx) -> None:
    """MTT and SelMatch at each distillation budget, each against the same method at the profile's own budget
    (paired runs; the smallest budget where the profile's is not swept), with how far the images moved."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = _by_budget(rows, method)
        base = _budget_reference(mine, ctx)
        for r in mine:
            p = "–" if r is base else str(paired(r, base))
            out.append([method, r["iterations"], r["syn_steps"], r["iterations"] * r["syn_steps"],
                        fmt(r["mean"], r["std"]), p, f"{r['syn_lr']:.3f}",
                        "–" if r.get("moved_median") is None else f"{100 * r['moved_median']:.0f} %"])
    table(out, ["method", "iterations", "syn_steps", "student steps", f"test accuracy ({ctx.profile}, {ctx.dataset}, %)",
                "− reference budget (paired)", "syn_lr", "images moved"])


def distill_budget_conclusions(rows: list[dict], ctx) -> None:
    """Each budget against the reference one, per method, and what that says of "the distillation is too short"."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = _by_budget(rows, method)
        if len(mine) < 2:
            continue
        ref = _budget_reference(mine, ctx)
        steps = ref["iterations"] * ref["syn_steps"]
        name = lambda r: f"{r['iterations']} × {r['syn_steps']}"                      # noqa: E731
        parts = [f"{name(r)}: {phrase(paired(r, ref), name(r), name(ref))}" for r in mine if r is not ref]
        larger = [paired(r, ref) for r in mine if r["iterations"] * r["syn_steps"] > steps]
        above = sum(p.verdict == "above" for p in larger)
        below = sum(p.verdict == "below" for p in larger)
        out.append(f"- **{method}, IPC {ref['ipc']} ({ratio(ctx.dataset, ref['ipc'])})**, against the reference budget "
                   f"{name(ref)} ({steps} student steps): " + "; ".join(parts) + ".")
        if larger:
            out.append(f"  *Is the distillation too short?* Of {len(larger)} larger budget(s), {above} "
                       f"{'is' if above == 1 else 'are'} above the reference and {below} below: "
                       + ("more distillation helps here." if above and not below else
                          "more distillation hurts here." if below and not above else
                          "mixed." if above and below else
                          "no gain from more distillation is detected at this number of runs."))
    if out:
        show("\n".join(out) + f"\n\n*Verdict rule:* {RULE}")


def too_short_verdict(rows: list[dict], ctx) -> str:
    """The hypothesis "the distillation is too short" against the budget sweep, in one sentence: per method,
    how many larger budgets are above and below the profile's own; refuted when none is above and some below."""
    parts, above_any, below_any = [], False, False
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = _by_budget(rows, method)
        ref = _budget_reference(mine, ctx)
        larger = [paired(r, ref) for r in mine if r["iterations"] * r["syn_steps"] > ref["iterations"] * ref["syn_steps"]]
        if not larger:
            continue
        up, down = sum(p.verdict == "above" for p in larger), sum(p.verdict == "below" for p in larger)
        above_any, below_any = above_any or up > 0, below_any or down > 0
        parts.append(f"{method} at IPC {ref['ipc']}: of {len(larger)} larger budgets, {up} above the profile's and "
                     f"{down} below")
    if not parts:
        return "the budget sweep has no budget larger than the profile's, so it does not test this"
    outcome = ("refuted: more distillation made no set better and some worse" if below_any and not above_any else
               "supported: more distillation made some set better" if above_any and not below_any else
               "not decided: more distillation made some sets better and some worse" if above_any else
               "not decided: no larger budget differs from the profile's at this number of runs")
    return "; ".join(parts) + f" — {outcome}"


def ablations(ctx: Context, ipcs: list[int], alphas: list[float], betas: list[float], alpha_fixed: float,
              distill_budgets: list[list[int]] | None = None) -> dict:
    """α per IPC; augmentation and initialisation at the largest IPC and ``alpha_fixed``; and, at the smallest
    IPC, MTT and SelMatch (``alpha_fixed``) at each ``[iterations, syn_steps]`` budget."""
    beta = {ipc: w["beta"] for ipc, w in best_windows(ctx, ipcs, betas).items()}
    ipc = ipcs[-1]
    jobs = {("alpha", i, a): selmatch_run.job(ctx, i, a, beta[i]) for i in ipcs for a in alphas}
    jobs |= {("aug", a): selmatch_run.job(ctx, ipc, alpha_fixed, beta[ipc], augmentation=a)
             for a in ("combined", "dsa", "simple")}
    jobs |= {("init", i): selmatch_run.job(ctx, ipc, alpha_fixed, beta[ipc], init=i) for i in ("window", "random")}
    jobs |= _budget_jobs(ctx, ipcs[0], beta[ipcs[0]], alpha_fixed, distill_budgets)
    res = {key: r["result"] for key, r in zip(jobs, run(list(jobs.values()), "distillations"))}
    alpha_rows = [{"ipc": i, "alpha": a, **res["alpha", i, a]["final"]} for i in ipcs for a in alphas]
    aug = {a: res["aug", a]["final"] for a in ("combined", "dsa", "simple")}
    init = {i: res["init", i]["final"] for i in ("window", "random")}
    return {"beta": beta, "alpha_rows": alpha_rows, "ipc": ipc, "aug": aug, "init": init,
            "budget_rows": _budget_rows(ctx, ipcs[0], alpha_fixed, distill_budgets, res)}


def _budget_jobs(ctx: Context, ipc: int, beta: float, alpha_fixed: float, distill_budgets) -> dict:
    budgets = [{"iterations": it, "syn_steps": st} for it, st in distill_budgets or []]
    methods = (("MTT", 1.0, 0.0, "random"), ("SelMatch", alpha_fixed, beta, "window"))
    return {("budget", k, m): selmatch_run.job(ctx, ipc, a, b, init=how, distill=change)
            for k, change in enumerate(budgets) for m, a, b, how in methods}


def _budget_rows(ctx: Context, ipc: int, alpha_fixed: float, distill_budgets, res: dict) -> list[dict]:
    budgets = [{"iterations": it, "syn_steps": st} for it, st in distill_budgets or []]
    return [{"method": m, "ipc": ipc, **change, "syn_lr": res["budget", k, m]["syn_lr"],
             "moved_median": res["budget", k, m].get("moved_median"), **res["budget", k, m]["final"]}
            for k, change in enumerate(budgets) for m in ("MTT", "SelMatch")]


def budget_sweep(ctx: Context, ipcs: list[int], betas: list[float], alpha_fixed: float,
                 distill_budgets: list[list[int]] | None = None, **_) -> list[dict]:
    """Only the distillation-budget sweep of :func:`ablations` (the same results; for pages that cite its
    verdict): MTT and SelMatch at the smallest IPC, at each budget. Takes the page's whole grid."""
    small = ipcs[0]
    beta = best_windows(ctx, [small], betas)[small]["beta"]
    jobs = _budget_jobs(ctx, small, beta, alpha_fixed, distill_budgets)
    res = {key: r["result"] for key, r in zip(jobs, run(list(jobs.values()), "distillation budgets"))}
    return _budget_rows(ctx, small, alpha_fixed, distill_budgets, res)
