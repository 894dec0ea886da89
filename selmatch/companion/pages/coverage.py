"""Page 03, coverage: how much of the real data each set covers, overall and by difficulty half, and along
the distillation (data, figures, conclusions).
"""
from __future__ import annotations

import matplotlib.pyplot as plt

from ..paper import fmt
from ..report import panels, ratio, show, table
from ..stats import RULE, paired, phrase
from ..units import best_windows, Context, random_coverage, run, selmatch_run, window_coverage


def coverage_vs_ipc(rows: list[dict], ctx):
    fig, axes = panels(3, 4.2, 3.3)
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


def coverage(ctx: Context, ipcs: list[int], alpha: float, betas: list[float], eval_at: list[int]) -> tuple[list[dict], dict]:
    """Coverage of random, window, MTT and SelMatch sets per IPC, and the coverage of MTT and SelMatch along
    the distillation at the largest IPC (which also records its accuracy there)."""
    beta = {ipc: w["beta"] for ipc, w in best_windows(ctx, ipcs, betas).items()}
    at = {ipc: tuple(eval_at) if ipc == ipcs[-1] else () for ipc in ipcs}
    jobs = [selmatch_run.job(ctx, ipc, a, b, init=init, eval_at=at[ipc], with_coverage=True)
            for ipc in ipcs for a, b, init in ((1.0, 0.0, "random"), (alpha, beta[ipc], "window"))]
    dist = iter(r["result"] for r in run(jobs, "distillations"))
    probes = run([random_coverage.job(ctx, ipc) for ipc in ipcs] + [window_coverage.job(ctx, ipc, beta[ipc])
                                                                      for ipc in ipcs], "coverage")
    rows = []
    for k, ipc in enumerate(ipcs):
        mtt, sm = next(dist), next(dist)
        rows.append({"ipc": ipc, "alpha": alpha, "beta": beta[ipc], "random": probes[k]["result"],
                     "window": probes[len(ipcs) + k]["result"], "MTT": mtt["coverage"],
                     "SelMatch": sm["coverage"], "acc": {"MTT": mtt["final"], "SelMatch": sm["final"]}})
    trace = {"MTT": mtt, "SelMatch": sm}           # the largest IPC's, with its evaluations along the way
    return rows, trace


def readout_table(trace: dict, ipc: int, ctx) -> None:
    """The readouts the field uses, from one distillation's evaluations along the way (one run each): the last
    iteration, the iteration chosen on the validation half, and the best on the test half (what the official
    code reports: selection on the test set), beside the last iteration with the profile's runs."""
    out = []
    for name, res in trace.items():
        pts = sorted((int(k), v["accuracy"]) for k, v in res["evals"].items())
        if not pts:
            continue
        last = pts[-1]
        chosen = max(pts, key=lambda p: (p[1]["val"], -p[0]))
        best = max(pts, key=lambda p: (p[1]["mean"], -p[0]))
        out.append([name, ", ".join(str(i) for i, _ in pts), f"{last[1]['mean']:.1f} (it. {last[0]})",
                    f"{chosen[1]['mean']:.1f} (it. {chosen[0]})", f"{best[1]['mean']:.1f} (it. {best[0]})",
                    f"{best[1]['mean'] - last[1]['mean']:+.1f}", fmt(res["final"]["mean"], res["final"]["std"]),
                    len(res["final"]["runs"])])
    table(out, ["method", "iterations evaluated", "last (1 run)", "chosen on validation (1 run)",
                "best on test (1 run)", "best − last", f"last, {ctx.profile}", "runs"])
    show(f"IPC {ipc} ({ratio(ctx.dataset, ipc)}). *Best on test* picks the iteration by the number it reports: what "
         "the official code does (it keeps the checkpoint with the best test accuracy). The book reports the last "
         "iteration; *best − last* is what selection on the test set would add here, one run each.")
