"""Page 08, how the cpu profile was chosen: the evaluation budget and the distillation pilots (data, figures,
tables, conclusions), and the large-IPC pilot.

The large-IPC pilot: why MTT ends below its own start at IPC 500 and 1000 on two cores, and what helps.

MTT starts from exactly a random class-balanced subset (α = 1, random initialisation). At the ``cpu`` profile it
ends *below* that start at IPC 500 and falls at every checkpoint. Each arm here changes one lever of the
distillation (or of the experts it matches) and records accuracy at iterations 0, ⅓, ⅔ and the end (one run
each) and at the end with the profile's runs, paired by seed with the start (the same set at iteration 0,
evaluated the same way: per-image DSA, as every MTT row of the book).

The levers, in the order the pilot tries them (most likely first):

* ``late``: match a later segment of the same experts (start epoch in [4, 8) instead of [0, 6)), as DATM
  (Guo et al., ICLR 2024) found later segments help at large IPC;
* ``long_late``: experts trained three times longer (30 epochs), matched late (start epoch in [20, 28));
* ``lr_img``: the image step ten times smaller, and the paper's 10,000 at 20–30 %;
* ``syn_lr``: the student's own step ten times larger at the start (lr_init 0.1; lr_img a tenth, since with
  the profile's lr_img the images diverge within ten iterations), and ``near``: a target one
  expert epoch ahead instead of two. Both test one hypothesis: the matching loss stays near 0.9 at IPC 500,
  so ten student steps of 0.01–0.02 cover little of two expert epochs (about 390 steps of 0.01), and the
  images may be pushed to make the student's steps larger instead of more like the real data's;
* ``batch``: four times more of the synthetic set per iteration (batch 512 instead of 128);
* ``expert_dsa``: experts trained with DSA, as MTT's own buffers are.

Every arm is a :func:`~selmatch.companion.units.selmatch_run`, so its result is cached under a key that
holds every setting it changed.
"""
from __future__ import annotations

from dataclasses import asdict

import matplotlib.pyplot as plt

from ..paper import fmt
from ..stats import paired, phrase, RULE
from ...settings import PILOT_START
from ..report import ratio, show, table
from ..units import Context, env_context, eval_budget, run, selmatch_run


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
    fig, axes = plt.subplots(len(ipcs), 2, figsize=(9.6, 3.2 * len(ipcs)), squeeze=False)   # a row per IPC
    for row, ipc in enumerate(ipcs):
        acc, los = axes[row]
        for p in (p for p in pilots if p["ipc"] == ipc):
            acc.plot(*zip(*_curve(p)), "-o", label=p["experts"])
            loss = p["loss"]
            w = max(1, len(loss) // 20)
            smooth = [sum(loss[i:i + w]) / len(loss[i:i + w]) for i in range(0, len(loss), w)]
            los.plot([i + w / 2 for i in range(0, len(loss), w)], smooth, label=p["experts"])
        acc.set(title=f"MTT, IPC {ipc} ({ratio(ctx.dataset, ipc)})", xlabel="distillation iteration",
                ylabel="validation accuracy (%, 1 run)")
        los.set(title=f"matching loss, IPC {ipc}", xlabel="distillation iteration",
                ylabel="matching loss (mean over a window)")
        for ax in (acc, los):
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


def budgets(ctx: Context, budget_ipcs: list[int], budgets: list[float], budget_lrs: list[float],
            small_ipcs: list[int], small_lrs: list[float], max_epochs: list[int]) -> tuple[list[dict], list[dict]]:
    """The evaluation-budget pilots: a random subset per IPC trained for ``budgets`` full-data epochs at each
    learning rate, and the small subsets at a cap of ``max_epochs``."""
    big = [{"ipc": i, "budget": e, "lr": lr} for i in budget_ipcs for lr in budget_lrs for e in budgets]
    small = [{"ipc": i, "lr": lr, "max_epochs": m} for i in small_ipcs for lr in small_lrs for m in max_epochs]
    records = run([eval_budget.job(ctx, r["ipc"], r["budget"], lr=r["lr"]) for r in big] +
                  [eval_budget.job(ctx, r["ipc"], 1000.0, max_epochs=r["max_epochs"], lr=r["lr"]) for r in small],
                  "evaluation budgets")
    rows = [{**r, **rec["result"]} for r, rec in zip(big + small, records)]
    return rows[:len(big)], rows[len(big):]


def expert_pilots(ctx: Context, distill_ipcs: list[int], expert_variants: list[dict], iterations: int) -> list[dict]:
    """MTT from the same random subset at the profile's original setting, once per variant of the experts,
    evaluated (one run, DSA) at 0, ⅓, ⅔ and all of ``iterations``."""
    start = PILOT_START[ctx.profile]
    eval_at = tuple(sorted({0, iterations // 3, 2 * iterations // 3, iterations}))
    cases = [(ipc, change) for ipc in distill_ipcs for change in expert_variants]
    records = run([selmatch_run.job(ctx, ipc, 1.0, 0.0, init="random", augmentation="dsa", runs=1, eval_at=eval_at,
                                    expert={**asdict(start.expert), **change},
                                    distill={**asdict(start.distill), "iterations": iterations})
                   for ipc, change in cases], "expert pilots")
    return [{"ipc": ipc, "experts": describe_change(change), **rec["result"]} for (ipc, change), rec in zip(cases, records)]


# ----------------------------------------------------------------------------- the large-IPC pilot

# Per profile, arm -> (what it changes in the experts, what it changes in the distillation, one line for the table).
# The cpu arms are the pilot's as it ran; the smoke arms are the same levers at smoke's scale (3-epoch experts).
ARMS: dict[str, dict[str, tuple[dict, dict, str]]] = {
    "cpu": {
        "start": ({}, {"iterations": 0}, "iteration 0: the random subset itself"),
        "profile": ({}, {}, "the profile: 5 experts × 10 epochs, start epoch in [0, 6), lr_img 1000, batch 128"),
        "late": ({}, {"min_start_epoch": 4, "max_start_epoch": 8}, "later segments: start epoch in [4, 8)"),
        "long_late": ({"epochs": 30}, {"min_start_epoch": 20, "max_start_epoch": 28},
                      "experts of 30 epochs, start epoch in [20, 28)"),
        "lr_small": ({}, {"lr_img": 100}, "lr_img 100 (a tenth)"),
        # lr_init 0.1 alone diverges within 10 iterations (pixels beyond 100× the real range): the images' gradient
        # grows with the student's step, so the image step is a tenth to keep the images' own step comparable
        "syn_lr": ({}, {"lr_init": 0.1, "lr_img": 100}, "the student's step starts at 0.1 (10×), lr_img 100"),
        "near": ({}, {"expert_epochs": 1}, "the target one expert epoch ahead (not 2)"),
        "lr_paper": ({}, {"lr_img": 10000}, "lr_img 10,000 (the paper's at 20–30 %)"),
        "batch": ({}, {"batch_syn": 512}, "batch_syn 512: 4× the images per iteration"),
        "expert_dsa": ({"augmentation": "dsa"}, {}, "experts trained with DSA"),
    },
    "smoke": {
        "start": ({}, {"iterations": 0}, "iteration 0: the random subset itself"),
        "profile": ({}, {}, "the profile"),
        "late": ({}, {"min_start_epoch": 1}, "later segments: start epoch in [1, 2)"),
        "lr_small": ({}, {"lr_img": 10}, "lr_img a tenth"),
    },
}


def arms(ctx: Context) -> dict[str, tuple[dict, dict, str]]:
    if ctx.profile not in ARMS:
        raise ValueError(f"the large-IPC pilot has no arms at profile={ctx.profile!r}; it has them at "
                         f"{', '.join(ARMS)}")
    return ARMS[ctx.profile]


def eval_points(ctx: Context, arm: str) -> tuple[int, ...]:
    """Iterations 0, ⅓, ⅔ and the end of the profile's distillation (none for the start itself)."""
    n = ctx.setting().distill.iterations
    return () if arm == "start" else (0, n // 3, 2 * n // 3, n)


def arm_job(ctx: Context, ipc: int, arm: str):
    """One arm of the pilot at ``ipc``: MTT from the random subset (α = 1), per-image DSA evaluation as every MTT
    row of the book, ``runs`` evaluations at the end and one at each point of :func:`eval_points`."""
    expert, distill, _ = arms(ctx)[arm]
    # the cpu profile's own run is the coverage page's (which also measures coverage; its accuracies are the same)
    return selmatch_run.job(ctx, ipc, 1.0, 0.0, init="random", eval_at=eval_points(ctx, arm),
                            with_coverage=arm == "profile" and ctx.profile == "cpu", expert=expert or None,
                            distill=distill or None)


def run_arm(ctx: Context, ipc: int, arm: str) -> dict:
    return arm_job(ctx, ipc, arm)()["result"]


def large_ipc(ctx: Context, ipcs: list[int], names: list[str], profile_ipcs: list[int] = ()) -> list[dict]:
    """The pilot's arms ``names`` at each IPC, each with the start (iteration 0, evaluated the same way); at each
    of ``profile_ipcs`` only the profile's own distillation and its start (does the outcome hold further up?)."""
    cases = [(ipc, arm) for ipc in ipcs for arm in dict.fromkeys(["start", *names])]
    cases += [(ipc, arm) for ipc in profile_ipcs if ipc not in ipcs for arm in ("start", "profile")]
    records = run([arm_job(ctx, ipc, arm) for ipc, arm in cases], "large-IPC pilot")
    return [{"ipc": ipc, "arm": arm, "what": arms(ctx)[arm][2], **rec["result"]}
            for (ipc, arm), rec in zip(cases, records)]


def large_ipc_figure(rows: list[dict], ctx):
    """Accuracy against iteration per arm (one run per point), beside the start's band (mean ± std, n runs)."""
    ipcs = sorted({r["ipc"] for r in rows})
    fig, axes = plt.subplots(len(ipcs), 1, figsize=(8, 3.8 * len(ipcs)), squeeze=False)
    for ax, ipc in zip(axes[:, 0], ipcs):
        start = next(r for r in rows if r["ipc"] == ipc and r["arm"] == "start")["final"]
        ax.axhspan(start["mean"] - start["std"], start["mean"] + start["std"], color="0.85",
                   label=f"start, {start['mean']:.1f} ± {start['std']:.1f} ({len(start['runs'])} runs)")
        for r in (r for r in rows if r["ipc"] == ipc and r["arm"] != "start"):
            its = sorted(int(k) for k in r["evals"])
            ax.plot(its, [r["evals"][str(i)]["accuracy"]["mean"] for i in its], "-o", label=r["arm"])
        ax.set(title=f"MTT from a random subset, IPC {ipc} ({ratio(ctx.dataset, ipc)}), {ctx.profile}",
               xlabel="distillation iteration", ylabel="test accuracy (%, 1 run)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


def large_ipc_table(rows: list[dict], ctx) -> None:
    out = []
    for r in (r for r in rows if r["arm"] != "start"):
        start = next(s for s in rows if s["ipc"] == r["ipc"] and s["arm"] == "start")["final"]
        out.append([r["ipc"], r["arm"], r["what"], fmt(r["final"]["mean"], r["final"]["std"]),
                    str(paired(r["final"], start)), paired(r["final"], start).verdict,
                    "–" if r.get("moved_median") is None else f"{100 * r['moved_median']:.0f} %",
                    f"{r.get('distill_seconds', 0) / 60:.0f}"])
    table(out, ["IPC", "arm", "what it changes", f"end, {ctx.profile}", "end − start [95 %]", "verdict",
                "images moved", "distill min"])
    show(f"*end*: test accuracy (%, {ctx.dataset}, mean ± std over the profile's runs, paired by seed with the start). "
         "*distill min*: the distillation's wall-clock minutes as it ran, which count any time its process was paused "
         "so that another computation could have the machine to itself; an upper bound on its cost, not a timing.")


def pilot_outcome(rows: list[dict]) -> dict[int, dict]:
    """Per IPC of the large-IPC pilot: its start, the arms tried, those that end above the start, and the
    highest (``None`` before any arm has run)."""
    out = {}
    for ipc in sorted({r["ipc"] for r in rows}):
        start = next(s for s in rows if s["ipc"] == ipc and s["arm"] == "start")["final"]
        tried = [r for r in rows if r["ipc"] == ipc and r["arm"] != "start"]
        out[ipc] = {"start": start, "tried": tried,
                    "up": [r["arm"] for r in tried if paired(r["final"], start).verdict == "above"],
                    "best": max(tried, key=lambda r: r["final"]["mean"]) if tried else None}
    return out


def large_ipc_conclusions(rows: list[dict], ctx) -> None:
    lines = []
    for ipc, o in pilot_outcome(rows).items():
        start, tried, up, best = o["start"], o["tried"], o["up"], o["best"]
        lines.append(f"- **IPC {ipc} ({ratio(ctx.dataset, ipc)})**: the start is {fmt(start['mean'], start['std'])} %. "
                     + (f"Of {len(tried)} arm(s), {len(up)} end above it ({', '.join(up) or 'none'}); the highest, "
                        f"{best['arm']}: {phrase(paired(best['final'], start), best['arm'], 'the start')}."
                        if best else "No arm has run yet."))
        untried = [a for a in arms(ctx) if a not in ("start", "profile") and a not in {r["arm"] for r in tried}]
        if untried and ipc in {r["ipc"] for r in tried if r["arm"] not in ("start", "profile")}:
            lines.append(f"  Not run at IPC {ipc} at this profile: {', '.join(untried)} "
                         f"({'; '.join(arms(ctx)[a][2] for a in untried)}).")
        by = {r["arm"]: r for r in tried}
        if "near" in by and "profile" in by and paired(by["near"]["final"], start).verdict == "below":
            p = paired(by["near"]["final"], by["profile"]["final"])
            lines.append(f"  A target one expert epoch ahead: {phrase(p, 'near', 'the profile')}; it still ends below "
                         "its start, so the hypothesis that the student reaches too little of the target is "
                         + ("refuted in that form here." if p.verdict != "above" else "not refuted here: it helps."))
    show("\n".join(lines) + f"\n\n**Verdict rule.** {RULE}")


def main(argv: list[str] | None = None) -> None:
    """``SELMATCH_RESULTS=results python -m selmatch.companion.pages.cpu_profile --profile cpu --ipc 500 --arms
    start late ...``: compute the large-IPC pilot's arms in order (resumable: each finished arm is cached; without
    ``SELMATCH_RESULTS`` the new results go to ``rerun-cpu/results``, see :func:`~..units.env_context`). An arm
    whose distillation diverges is reported and the next one runs."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--ipc", type=int, nargs="+", default=[500])
    ap.add_argument("--arms", nargs="+", default=list(ARMS["cpu"]), choices=sorted({a for v in ARMS.values() for a in v}))
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    ctx = env_context(profile=args.profile, device=args.device)
    from ...distill import DistillationDiverged

    for ipc in args.ipc:
        for arm in args.arms:
            try:
                res = run_arm(ctx, ipc, arm)
            except DistillationDiverged as err:      # an outcome of the arm, not the end of the pilot
                print(f"ipc {ipc} {arm}: diverged: {err}", flush=True)
                continue
            evals = {k: v["accuracy"]["mean"] for k, v in res.get("evals", {}).items()}
            print(f"ipc {ipc} {arm}: final {res['final']['mean']:.2f} ± {res['final']['std']:.2f} evals {evals}",
                  flush=True)


if __name__ == "__main__":
    main()
