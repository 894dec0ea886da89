"""Pages 05 and 06, the main results: random, the best window, MTT and SelMatch per IPC (data, tables,
figures, conclusions).
"""
from __future__ import annotations

import statistics

import matplotlib.pyplot as plt

from ..paper import fmt, paper_value
from ..report import _compare, ratio, show, table
from ..stats import RULE, paired, signed
from ...settings import paper_setting
from ..units import best_on_val, best_windows, Context, random_eval, run, selmatch_run, window_eval


METHODS = ("Random", "Sliding window", "MTT", "SelMatch")

# What each evaluation policy does, in words (the name is recorded in every evaluation's result)
AUGMENTATION = {"dsa": "DSA, one family per batch", "simple": "crop + flip", "none": "none",
                "combined": "crop + flip on real images, DSA with one family per image on distilled ones"}


def augmentation_of(row: dict) -> str:
    """The evaluation policy a row was trained under, in words, from the name its job's config recorded
    (``combined`` on a set that is all distilled is per-image DSA; on one with nothing distilled, crop + flip)."""
    kind = row.get("augmentation")
    if kind not in AUGMENTATION:
        raise ValueError(f"a row evaluated with augmentation={kind!r} cannot be described: the table says how each "
                         f"row was evaluated, from {', '.join(AUGMENTATION)}")
    if kind == "combined" and row.get("distilled_fraction") in (0.0, 1.0):
        return ("crop + flip (no image is distilled)" if row["distilled_fraction"] == 0.0 else
                "DSA with one family per image (every image is distilled)")
    return AUGMENTATION[kind]


def evaluated(record: dict) -> dict:
    """A job's final evaluation with what it was evaluated under: the augmentation and the distilled fraction
    (from the job's config, so results made before either was written in the result carry them too)."""
    cfg, res = record["config"], record["result"]
    return {**res.get("final", res), "augmentation": cfg["augmentation"], "distilled_fraction": cfg.get("alpha", 0.0)}


# Subsets whose paper numbers are for the full dataset: shown for orientation, under their own header.
ORIENTATION = {"tinyimagenet-c10": ("tinyimagenet", "paper, all 200 classes (%, orientation only)")}


def main_table(results: dict, ctx) -> None:
    """One row per subset size, one column per method: ours (mean ± std over the runs) above the paper's."""
    paper_ds, paper_header = ORIENTATION.get(ctx.dataset, (ctx.dataset, "paper"))
    paper_word = "paper, 200 classes" if paper_ds != ctx.dataset else "paper"
    rows, chosen = [], []
    for ipc, by in results.items():
        rt = ratio(ctx.dataset, ipc)
        cells = []
        for m in METHODS:
            p = paper_value(m, paper_ds, rt)
            cells.append(f"**{fmt(by[m]['mean'], by[m]['std'])}**" + (f"<br>*{paper_word} {fmt(*p)}*" if p else ""))
        rows.append([f"{ipc} ({rt})", *cells])
        sm = by["SelMatch"]
        chosen.append((ipc, f"window β = {by['Sliding window']['beta']} (chosen on the validation half), "
                            + selmatch_choice(sm)))
    n = sorted({len(by[m]["runs"]) for by in results.values() for m in METHODS})
    table(rows, ["IPC (ratio)", *METHODS])
    same = len({c for _, c in chosen}) == 1
    show(f"Test accuracy (%), **ours at `{ctx.profile}`** (mean ± std over {'/'.join(map(str, n))} runs) above "
         f"*{paper_header if paper_ds != ctx.dataset else 'the paper (ResNet-18-BN, 5 runs)'}*. "
         + (f"At every IPC: {chosen[0][1]}." if same else "; ".join(f"IPC {i}: {c}" for i, c in chosen) + ".")
         + " " + protocol_note(results))


def setting_words(c: dict) -> str:
    """A SelMatch candidate in words: its α, β and, where it changes the profile's, lr_img."""
    lr = f", lr_img {c['distill']['lr_img']:,g}" if c.get("distill") else ""
    return f"α {c['alpha']}, β {c.get('beta')}{lr}"


def selmatch_choice(sm: dict) -> str:
    """How SelMatch's setting was chosen, in words, for a table's caption."""
    if sm.get("alpha_fixed"):
        return f"α = {sm['alpha']} (fixed in advance)"
    paper = [c for c in sm.get("candidates", ()) if "paper" in c.get("setting", "")]
    if not paper:
        return f"α = {sm['alpha']} (chosen on the validation half)"
    where = "the paper's own setting" if "paper" in sm.get("setting", "") else "the grid's; the paper's was a candidate"
    return f"SelMatch {setting_words(sm)} ({where}; chosen on the validation half)"


def protocol_note(results: dict) -> str:
    """Which augmentation each column was evaluated with, from the results; says so when they differ."""
    used = {m: dict.fromkeys(augmentation_of(by[m]) for by in results.values()) for m in METHODS}
    words = "; ".join(f"{m}: {' / '.join(u)}" for m, u in used.items())
    if len({w for u in used.values() for w in u}) == 1:
        return f"Every row is evaluated with the same augmentation ({next(iter(used['Random']))})."
    return (f"**The columns are evaluated with different augmentations**, as the paper's code evaluates each method "
            f"({words}); the section *One protocol per comparison* below separates what the augmentation does "
            "from what the distillation does.")


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


def paper_settings_table(results: dict, ctx) -> None:
    """SelMatch at the paper's own α, β and lr_img, at each IPC where the official scripts set them, against
    the best of the grid's candidates and against the other three methods (paired by evaluation seed)."""
    rows, picked, runs = [], [], set()
    for ipc, by in results.items():
        cands = by["SelMatch"].get("candidates", [])
        paper = next((c for c in cands if "paper" in c["setting"]), None)
        if paper is None:
            continue
        grid = [c for c in cands if c["setting"] == "grid"]
        if grid:
            best = best_on_val(grid)
            p = paired(paper, best)
            vs_grid = f"{p}<br>{p.verdict} (grid: {setting_words(best)})"
        else:
            vs_grid = "– (the paper's setting is in the grid)"
        cells = [f"{p}<br>{p.verdict}" for p in (paired(paper, by[m]) for m in ("Random", "Sliding window", "MTT"))]
        w, pw = by["Sliding window"], by["Sliding window"].get("paper")
        if pw is None:
            at_beta = "–"
        elif pw["beta"] == w["beta"]:
            at_beta = f"β {pw['beta']}: {fmt(pw['mean'], pw['std'])}<br>(the best window on validation)"
        else:
            d = paired(pw, w)
            at_beta = f"β {pw['beta']}: {fmt(pw['mean'], pw['std'])}<br>{d} {d.verdict} (best: β {w['beta']})"
        rows.append([f"{ipc} ({ratio(ctx.dataset, ipc)})", setting_words(paper), fmt(paper["mean"], paper["std"]),
                     vs_grid, *cells, at_beta])
        picked.append(f"IPC {ipc}: {'the paper' if 'paper' in by['SelMatch']['setting'] else 'the grid'}")
        runs.add(len(paper["runs"]))
    if not rows:
        show(f"The official scripts set SelMatch for {ctx.dataset} at none of this page's IPCs "
             f"({', '.join(map(str, results))}), so there is no paper-setting row.")
        return
    table(rows, ["IPC (ratio)", "the paper's setting", f"SelMatch at it, {ctx.profile}", "− the grid's best (val)",
                 "− Random", "− best window", "− MTT", "the window at the paper's β − the best window"])
    show(f"Test accuracy (%, `{ctx.profile}`, {ctx.dataset}, mean ± std over {'/'.join(map(str, sorted(runs)))} runs) "
         "and paired differences in points (95 % interval, verdict). Everything except α, β and lr_img is the "
         "profile's. The window at the paper's β (selection only, the paper's DSA) was a candidate for the best "
         "window on the validation half beside the grid's β. Chosen for the main table on the validation half: "
         f"{'; '.join(picked)}. *Verdict rule:* {RULE}")


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


def rank(means: dict[str, float]) -> str:
    """``A > B = C``: methods by mean, highest first, with ``=`` between means equal at the one decimal shown
    (a rank of means only; the differences table says which gaps the runs can tell)."""
    order = sorted(means, key=lambda m: -means[m])
    out = order[0]
    for prev, m in zip(order, order[1:]):
        out += (" = " if f"{means[prev]:.1f}" == f"{means[m]:.1f}" else " > ") + m
    return out


def main_conclusions(results: dict, ctx) -> None:
    """Sentences computed from the main table: the ranking per ratio and SelMatch against each method,
    with the paper's ranking beside ours."""
    out = []
    for ipc, by in results.items():
        rt = ratio(ctx.dataset, ipc)
        line = f"- **IPC {ipc} ({rt})**: ours rank " + rank({m: by[m]["mean"] for m in METHODS})
        paper = {m: paper_value(m, ctx.dataset, rt) for m in METHODS}
        if all(paper.values()):
            line += "; the paper's rank " + rank({m: paper[m][0] for m in METHODS})
        sm = by["SelMatch"]
        line += ". SelMatch is " + ", ".join(f"{_compare(sm, by[m])} {m}" for m in METHODS if m != "SelMatch") + "."
        out.append(line)
    show("\n".join(out) + f"\n\n*Verdict rule:* {RULE}")


def paper_candidate(ctx: Context, ipc: int) -> dict | None:
    """The official scripts' SelMatch setting at ``ipc`` for the context's dataset, as a candidate beside the
    grid's: ``{"alpha", "beta", "distill"}``, where ``distill`` sets the paper's lr_img when it differs from the
    profile's (None otherwise). None where the paper sets none: another IPC, or a subset of one of its datasets
    (the paper's settings are for all of its classes)."""
    try:
        ps = paper_setting(ctx.dataset, ipc)
    except ValueError:
        return None
    if ps.dataset != ctx.dataset:
        return None
    lr = ps.distill.lr_img
    return {"alpha": ps.alpha, "beta": ps.beta,
            "distill": None if lr == ctx.setting(ipc).distill.lr_img else {"lr_img": lr}}


def main_results(ctx: Context, ipcs: list[int], betas: list[float], alphas: list[float] | float,
                 score: str = "cscore", paper: bool = False) -> dict:
    """Random, the best window, MTT and SelMatch per IPC. The window's candidates are ``betas``, with ``paper`` also
    the paper's own β where it sets one (kept as ``by["Sliding window"]["paper"]``). SelMatch's candidates are each
    α of ``alphas`` at the best window's β, and with ``paper`` also the paper's own α, β and lr_img
    (:func:`paper_candidate`); the best on validation is chosen. ``by["SelMatch"]["candidates"]`` keeps them all."""
    alphas = alphas if isinstance(alphas, list) else [alphas]
    ps = {ipc: paper_candidate(ctx, ipc) if paper else None for ipc in ipcs}
    pb = {ipc: ps[ipc]["beta"] for ipc in ipcs if ps[ipc]}     # the paper's β: a candidate beside the grid's
    cand = {ipc: betas + ([pb[ipc]] if ipc in pb and pb[ipc] not in betas else []) for ipc in ipcs}
    window = best_windows(ctx, ipcs, cand, score)        # every IPC's candidates in one batch (under Ray)
    for ipc in pb:                                       # and the paper's shown on its own (cached by the call above)
        window[ipc]["paper"] = best_windows(ctx, [ipc], [pb[ipc]], score)[ipc]
    cands = {ipc: [{"alpha": a, "beta": window[ipc]["beta"], "distill": None, "setting": "grid"} for a in alphas]
             for ipc in ipcs}
    for ipc in ipcs if paper else ():
        c = ps[ipc]
        same = [g for g in cands[ipc] if c and (g["alpha"], g["beta"], g["distill"]) == (c["alpha"], c["beta"], c["distill"])]
        for g in same:
            g["setting"] = "grid and paper"
        if c and not same:
            cands[ipc].append({**c, "setting": "paper"})
    jobs = {(ipc, "Random"): random_eval.job(ctx, ipc) for ipc in ipcs}
    jobs |= {(ipc, "MTT"): selmatch_run.job(ctx, ipc, 1.0, 0.0, init="random") for ipc in ipcs}
    jobs |= {(ipc, i): selmatch_run.job(ctx, ipc, c["alpha"], c["beta"], score=score, distill=c["distill"])
             for ipc in ipcs for i, c in enumerate(cands[ipc])}
    res = dict(zip(jobs, run(list(jobs.values()), "random, MTT and SelMatch")))
    results = {}
    for ipc in ipcs:
        sm = [{**c, "alpha_fixed": len(cands[ipc]) == 1, **_distilled(res[ipc, i])} for i, c in enumerate(cands[ipc])]
        results[ipc] = {"Random": evaluated(res[ipc, "Random"]), "Sliding window": window[ipc],
                        "MTT": _distilled(res[ipc, "MTT"]), "SelMatch": {**best_on_val(sm), "candidates": sm}}
    return results


def decomposition(ctx: Context, results: dict) -> dict:
    """At each IPC, each distilled method against its own iteration 0 under its own augmentation: SelMatch's
    window (the paper's DSA) → the same window under SelMatch's augmentation, nothing distilled → SelMatch, and
    the random subset (DSA) → the same subset under MTT's augmentation → MTT. Every evaluation uses the same
    seeds, so each step is a paired difference."""
    jobs = {}
    for ipc, by in results.items():
        sm = by["SelMatch"]
        jobs[ipc, "SelMatch"] = selmatch_run.job(ctx, ipc, sm["alpha"], sm["beta"], iterations=0,
                                                 distill=sm["distill"])
        jobs[ipc, "MTT"] = selmatch_run.job(ctx, ipc, 1.0, 0.0, init="random", iterations=0)
    res = {key: evaluated(r) for key, r in zip(jobs, run(list(jobs.values()), "iteration 0 of each distillation"))}
    return {ipc: {"SelMatch": (by["Sliding window"], res[ipc, "SelMatch"], by["SelMatch"]),
                  "MTT": (by["Random"], res[ipc, "MTT"], by["MTT"])} for ipc, by in results.items()}


STEPS = {"SelMatch": ("window", "window, SelMatch's augmentation"),
         "MTT": ("random subset", "subset, MTT's augmentation")}


def decomposition_table(parts: dict, method: str, ctx) -> None:
    """One row per IPC: the selection as the paper evaluates it, the same images under the method's own
    augmentation before any distillation, the method; then the two steps as paired differences."""
    rows = []
    for ipc, steps in parts.items():
        sel, start, end = steps[method]
        aug, dist, total = paired(start, sel), paired(end, start), paired(end, sel)
        rows.append([f"{ipc} ({ratio(ctx.dataset, ipc)})", fmt(sel["mean"], sel["std"]), fmt(start["mean"], start["std"]),
                     fmt(end["mean"], end["std"]), f"{aug}<br>{aug.verdict}", f"{dist}<br>{dist.verdict}",
                     f"{total}<br>{total.verdict}"])
    first, second = STEPS[method]
    table(rows, ["IPC (ratio)", f"(1) {first}", "(2) " + second, f"(3) {method}", "(2) − (1): augmentation",
                 "(3) − (2): distillation", "(3) − (1)"])
    one = next(iter(parts.values()))[method]
    show(f"Test accuracy (%, `{ctx.profile}`, {ctx.dataset}, mean ± std over {len(one[0]['runs'])} runs, the same "
         f"evaluation seeds in every column); (2) is {method} at iteration 0, its initial images before any update. "
         f"Augmentation of (1): {augmentation_of(one[0])}; of (2) and (3): "
         f"{augmentation_of(one[1])}. "
         f"Differences in points with their 95 % interval and verdict.")


def decomposition_conclusions(parts: dict, ctx) -> None:
    """Per IPC: how much of SelMatch's difference from the window is the augmentation and how much the
    distillation, and what MTT's distillation does under one protocol."""
    out = []
    for ipc, steps in parts.items():
        sel, start, end = steps["SelMatch"]
        _, m0, m = steps["MTT"]
        out.append(f"- **IPC {ipc} ({ratio(ctx.dataset, ipc)})**: SelMatch − the window is {paired(end, sel)} points; "
                   f"of it, the augmentation alone gives {paired(start, sel)} ({paired(start, sel).verdict}) and the "
                   f"distillation {paired(end, start)} ({paired(end, start).verdict}). Under one protocol, MTT's "
                   f"distillation gives {paired(m, m0)} ({paired(m, m0).verdict}) against its random start.")
    show("\n".join(out) + f"\n\n*Verdict rule:* {RULE}")


def in_short(results: dict, parts: dict, too_short: str, ctx) -> None:
    """The page's opening, from its results: per ratio, where SelMatch stands against each method, how its
    difference from the window splits (one protocol), and what MTT's distillation does to its own start, with
    what has been tested as the cause where it harms."""
    out = []
    for ipc, by in results.items():
        sm = by["SelMatch"]
        sel, start, end = parts[ipc]["SelMatch"]
        _, m0, m = parts[ipc]["MTT"]
        verdicts = {m_: paired(sm, by[m_]).verdict for m_ in METHODS if m_ != "SelMatch"}
        groups = {v: [m_ for m_, w in verdicts.items() if w == v] for v in ("above", "below", "no difference")}
        out.append(f"- **{ratio(ctx.dataset, ipc)} (IPC {ipc})**: SelMatch is "
                   + "; ".join((f"{v} " if v != "no difference" else "not distinguishable from ") + ", ".join(ms)
                               for v, ms in groups.items() if ms)
                   + f". Against the window, the augmentation gives {paired(start, sel)} and the distillation "
                   f"{paired(end, start)} points; MTT's distillation gives {paired(m, m0)} against its own start.")
    harms = [ipc for ipc in parts if paired(parts[ipc]["MTT"][2], parts[ipc]["MTT"][1]).verdict == "below"]
    wins = [f"{ratio(ctx.dataset, ipc)}" for ipc, by in results.items()
            if all(paired(by["SelMatch"], by[m_]).verdict == "above" for m_ in METHODS if m_ != "SelMatch")]
    line = (f"\n\nThe paper's headline, SelMatch above all three methods, reproduces at {len(wins)} of "
            f"{len(results)} ratios{' (' + ', '.join(wins) + ')' if wins else ''}.")
    if harms:
        line += (f" MTT's distillation harms its own start at IPC {', '.join(map(str, harms))}, and the cause is not "
                 f"found: *the distillation is too short* was tested on {{doc}}`04_ablations` ({too_short}), and "
                 "{doc}`08_cpu_profile` tries one lever at a time at large IPC.")
    show("\n".join(out) + line + f"\n\n*Verdict rule:* {RULE} Intervals are 95 %, in points.")


def replicated(ctx: Context, results: dict, ipcs: list[int], draws: int, score: str = "cscore") -> dict:
    """The page's four methods at ``ipcs`` in ``draws`` independent draws: draw 0 is the page's own results, draw d
    reruns everything at seed ``seed + 100·d`` (another random subset, other experts, another distillation, other
    evaluation seeds) with every choice kept from draw 0: the window's β and SelMatch's α, β and lr_img. The draws
    measure what chance does to a comparison as configured, not the choice on validation (rerunning that would
    cost every candidate again). ``{ipc: [by_method of each draw]}``; computed one IPC at a time, so a partial
    run leaves whole IPCs behind it."""
    from dataclasses import replace

    if not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws={draws!r}: the number of independent draws must be an integer ≥ 1 (1: the page's own)")
    missing = [i for i in ipcs if i not in results]
    if missing:
        raise ValueError(f"draw_ipcs={ipcs}: {missing} not among the page's ipcs {list(results)}; a draw is compared "
                         "with the page's own results at the same IPC")
    jobs = {}
    for ipc in ipcs:
        by = results[ipc]
        sm = by["SelMatch"]
        for d in range(1, draws):
            c = replace(ctx, seed=ctx.seed + 100 * d)
            jobs[ipc, d, "Random"] = random_eval.job(c, ipc)
            jobs[ipc, d, "Sliding window"] = window_eval.job(c, ipc, by["Sliding window"]["beta"], score)
            jobs[ipc, d, "MTT"] = selmatch_run.job(c, ipc, 1.0, 0.0, init="random")
            jobs[ipc, d, "SelMatch"] = selmatch_run.job(c, ipc, sm["alpha"], sm["beta"], score=score,
                                                        distill=sm["distill"])
    res = dict(zip(jobs, run(list(jobs.values()), "replicated draws")))
    out = {}
    for ipc in ipcs:
        chosen = {k: v for k, v in results[ipc]["SelMatch"].items() if k in ("alpha", "beta", "distill", "setting")}
        out[ipc] = [results[ipc]] + [
            {"Random": evaluated(res[ipc, d, "Random"]),
             "Sliding window": {"beta": results[ipc]["Sliding window"]["beta"], **evaluated(res[ipc, d, "Sliding window"])},
             "MTT": _distilled(res[ipc, d, "MTT"]), "SelMatch": {**chosen, **_distilled(res[ipc, d, "SelMatch"])}}
            for d in range(1, draws)]
    return out


HEADLINE = (("SelMatch", "Random"), ("SelMatch", "Sliding window"), ("SelMatch", "MTT"))   # claim (h)


def over_draws(by_draw: list[dict], a: str, b: str):
    """The interval over draws of A − B: a Student-t interval of the per-draw mean differences (each draw paired
    by its own evaluation seeds), so it covers the random subset, the experts and the distillation too; None with
    fewer than two draws."""
    diffs = [paired(by[a], by[b]).diff for by in by_draw]
    return paired(diffs, [0.0] * len(diffs)) if len(diffs) >= 2 else None


def draws_table(rep: dict, ctx) -> None:
    """Per ratio and comparison: draw 0's seed-paired interval, each draw's difference, and the interval over
    draws (:func:`over_draws`), with the verdict of each under the book's rule."""
    rows, sds = [], []
    for a, b in HEADLINE:
        for ipc, by_draw in rep.items():
            per = [paired(by[a], by[b]) for by in by_draw]
            over = over_draws(by_draw, a, b)
            if over is not None:
                sds.append(statistics.stdev(p.diff for p in per))
            rows.append([f"{a} − {b}", f"{ipc} ({ratio(ctx.dataset, ipc)})", f"{per[0]} {per[0].verdict}",
                         ", ".join(signed(p.diff) for p in per),
                         "– (one draw)" if over is None else f"{over} {over.verdict}"])
    n = len(next(iter(rep.values())))
    table(rows, ["difference", "IPC (ratio)", "draw 0, seed-paired (points, 95 %)", f"each draw (n = {n})",
                 "over draws (points, 95 %)"])
    runs = len(next(iter(rep.values()))[0]["Random"]["runs"])
    note = (f"`{ctx.profile}`, {ctx.dataset}: {n} draw{'s' if n > 1 else ''} of {runs} evaluation runs each. The "
            "seed-paired interval covers only the evaluation seeds of one draw (one random subset, one set of experts, "
            "one distillation); the interval over draws covers those too. Every draw keeps draw 0's choices (the window's β, "
            "SelMatch's setting).")
    if n == 1:
        note += (" With one draw there is no interval over draws yet: a larger `draws` computes more (each draw costs "
                 "about what the page's row on the status page says, again).")
    elif sds:
        from ..stats import LEVEL
        from scipy.stats import t as student_t

        half = student_t.ppf(0.5 + LEVEL / 2, n - 1) * statistics.median(sds) / n ** 0.5
        note += (f" Power: the median spread of a difference between draws is {statistics.median(sds):.2f} points, so "
                 f"with {n} draws the interval over draws is ±{half:.1f} points wide; a difference smaller than that "
                 "cannot be told from zero here.")
    show(note + f" *Verdict rule:* {RULE} Over draws, the same rule applies to the draws' mean differences.")


def _distilled(record: dict) -> dict:
    """A distillation's final evaluation, with how the distillation went: its matching loss at the start and
    over the last five iterations, the learned step size and how far the images moved (median relative
    change; results made before that was recorded have ``None``)."""
    result = record["result"]
    loss = result.get("loss") or [None]
    tail = [v for v in loss[-5:] if v is not None]
    return {**evaluated(record), "loss_first": loss[0], "loss_last5": sum(tail) / len(tail) if tail else None,
            "syn_lr": result.get("syn_lr"), "moved_median": result.get("moved_median")}
