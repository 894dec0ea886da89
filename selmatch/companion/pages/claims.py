"""The paper's claims, each tested on the results of the page that measures it.

A claim's test turns the page's data (:mod:`.pages`) into a statistic and a verdict:

* **holds**: every comparison the claim makes comes out as claimed under the book's verdict rule
  (:mod:`.stats`: the 95 % interval of the paired difference excludes 0 in the claimed direction);
* **does not hold**: at least one comparison comes out significantly the other way;
* **not decided**: otherwise (an interval contains 0: the runs cannot tell).

Claims about a chosen value (the best window) or about coverage (one distilled set, no run-to-run
spread) have no interval; their verdict is the direction alone, and the statistic says so. A coverage
difference smaller than :data:`COVERAGE_TOL` (a hundredth of the real sample) decides nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .ablations import ablations
from .coverage import coverage
from .crossover import crossover
from .main_results import decomposition, main_results, over_draws, replicated
from .sliding_window import sliding_window
from ..units import best_on_val, env_context
from ..paper import paper_value, small_ipc_value
from ..report import ratio, show, table
from ..stats import holm, paired

HOLDS, FAILS, UNDECIDED = "holds", "does not hold", "not decided"
AS_CLAIMED, AGAINST, NO_DIRECTION = ("direction only: as claimed", "direction only: against",
                                     "direction only: no difference")
FIGURE = "a figure (values not read)"
COVERAGE_TOL = 0.01


def _direction(smaller: float, larger: float) -> str:
    """'above' when ``larger`` exceeds ``smaller`` by at least COVERAGE_TOL, 'below' when the reverse, else
    'no difference' (coverage has no interval; see the module docstring)."""
    d = larger - smaller
    return "above" if d >= COVERAGE_TOL else "below" if d <= -COVERAGE_TOL else "no difference"


@dataclass(frozen=True)
class Claim:
    id: str
    text: str                                   # the paper's claim, in our words
    page: str                                   # the notebook whose results test it
    paper: Callable[[str], str]                 # dataset -> the paper's number(s), or "–"
    test: Callable[[dict, str], tuple[str, str]]   # (data of the page, dataset) -> (statistic, verdict)


def combine(verdicts: list[str]) -> str:
    """Every part as claimed: holds; any part significantly against: does not hold; else not decided (the
    verdicts of a family already corrected: :func:`family`)."""
    if verdicts and all(v == "above" for v in verdicts):
        return HOLDS
    if any(v == "below" for v in verdicts):
        return FAILS
    return UNDECIDED


def family(pairs: list) -> str:
    """The verdict of a claim made of the paired comparisons ``pairs`` (each oriented so that 'above' is as
    claimed), under Holm's correction over the claim's family (:data:`selmatch.companion.stats.HOLM`)."""
    return combine(holm(pairs))


def direction(verdicts: list[str]) -> str:
    """The verdict of a claim with no interval: its direction, never 'holds'."""
    return combine(verdicts).replace(HOLDS, AS_CLAIMED).replace(FAILS, AGAINST).replace(UNDECIDED, NO_DIRECTION)


def _pct(dataset: str, ipc: int) -> float:
    return float(ratio(dataset, ipc).rstrip("%"))


def _table1_gap(a: str, b: str, dataset: str, ipcs) -> str:
    parts = []
    for ipc in ipcs:
        rt = ratio(dataset, ipc)
        pa, pb = paper_value(a, dataset, rt), paper_value(b, dataset, rt)
        if pa and pb:
            parts.append(f"{rt}: {pa[0] - pb[0]:+.1f}")
    return ", ".join(parts) or "–"


# ----------------------------------------------------------------------------- the tests

def _window_start_matters(data, dataset):
    rows, _ = data["02_sliding_window"]
    parts, verdicts = [], []
    for ipc in sorted({r["ipc"] for r in rows}):
        if not 5 <= _pct(dataset, ipc) <= 10:
            continue
        cands = [r for r in rows if r["ipc"] == ipc and r["start_mode"] == "fraction"]
        if len(cands) < 2:
            continue
        best, worst = best_on_val(cands), min(cands, key=lambda r: r["val"])
        p = paired(best, worst)
        parts.append(f"IPC {ipc}: best (β {best['beta']}) − worst (β {worst['beta']}) window {p}")
        verdicts.append(p)
    return "; ".join(parts) or "no ratio of 5–10 % in the grid", family(verdicts)


def _best_window_harder(data, dataset):
    """The paper's best windows move from β 0.5 to 0.2 between 5 and 30 %: the claim is decided on the sweep's
    ratios in that range (at least two), never by a change below 5 %."""
    rows, _ = data["02_sliding_window"]
    all_ipcs = sorted({r["ipc"] for r in rows})
    ipcs = [i for i in all_ipcs if 5 <= _pct(dataset, i) <= 30]
    best = {i: best_on_val([r for r in rows if r["ipc"] == i and r["start_mode"] == "fraction"])["beta"]
            for i in all_ipcs}
    stat = ", ".join(f"IPC {i} ({ratio(dataset, i)}): β {best[i]}" for i in all_ipcs) + \
        " (chosen on validation; no interval)"
    if len(ipcs) < 2:
        return stat + "; fewer than two of these ratios lie in 5–30 %, where the claim is made", NO_DIRECTION
    betas = [best[i] for i in ipcs]
    outside = [i for i in all_ipcs if i not in ipcs]
    stat += (f"; decided on {', '.join(ratio(dataset, i) for i in ipcs)} (5–30 %, where the claim is made"
             + (f"; {', '.join(ratio(dataset, i) for i in outside)} left out)" if outside else ")"))
    harder = all(b2 <= b1 for b1, b2 in zip(betas, betas[1:])) and betas[-1] < betas[0]
    easier = all(b2 >= b1 for b1, b2 in zip(betas, betas[1:])) and betas[-1] > betas[0]
    return stat, AS_CLAIMED if harder else AGAINST if easier else NO_DIRECTION


def _window_beats_random(data, dataset):
    res = data["05_main_results"]
    ps = {ipc: paired(by["Sliding window"], by["Random"]) for ipc, by in res.items()}
    return "; ".join(f"IPC {i}: {p}" for i, p in ps.items()), family(list(ps.values()))


def _mtt_coverage(data, dataset):
    rows, trace = data["03_coverage"]
    r = rows[-1]
    mtt = r["MTT"]
    its = sorted(int(k) for k in trace["MTT"]["evals"])
    start = trace["MTT"]["evals"][str(its[0])]["coverage"] if its and its[0] == 0 else r["random"]
    what = "its own iteration 0 (the random subset, the same probe)" if its and its[0] == 0 else "random"
    stat = (f"IPC {r['ipc']}: MTT {mtt['all']:.3f} vs {what} {start['all']:.3f}; MTT hard {mtt['hard']:.3f} vs easy "
            f"{mtt['easy']:.3f} (one distilled set and one probe, n = 1; differences under {COVERAGE_TOL} decide "
            "nothing)")
    return stat, direction([_direction(mtt["all"], start["all"]), _direction(mtt["hard"], mtt["easy"])])


def _coverage_over_iterations(data, dataset):
    """MTT's hard-half coverage falls, and SelMatch's falls less than its distilled fraction α alone would make it
    (α × MTT's change: SelMatch moves only α of its images, so a fall α times MTT's is no evidence of the claim)."""
    rows, trace = data["03_coverage"]
    change = {}
    for name, res in trace.items():
        its = sorted(int(k) for k in res["evals"])
        first, last = res["evals"][str(its[0])]["coverage"], res["evals"][str(its[-1])]["coverage"]
        change[name] = (last["hard"] - first["hard"], its[0], its[-1])
    alpha = rows[-1].get("alpha")
    stat = "; ".join(f"{n}: hard-half coverage {c:+.3f} from iteration {a} to {b}" for n, (c, a, b) in change.items())
    if alpha is None:           # results of before the page recorded α: the direction against MTT alone
        expected, what = change["MTT"][0], "MTT's"
    else:
        expected, what = alpha * change["MTT"][0], f"α × MTT's = {alpha:g} × {change['MTT'][0]:+.3f} = " \
                                                   f"{alpha * change['MTT'][0]:+.3f}"
    verdicts = [_direction(change["MTT"][0], 0.0), _direction(expected, change["SelMatch"][0])]
    return stat + (f"; SelMatch's change against {what} (what its fraction α of moving images alone gives; one "
                   f"distillation each, one probe, n = 1; differences under {COVERAGE_TOL} decide nothing)"), \
        direction(verdicts)


def _hard_half_gap(data, dataset):
    """What the paper means: SelMatch gains more over MTT on the hard half than on the easy half (the gap between
    the halves narrows). Both halves are reported; the verdict is on the difference of the two gains, paired."""
    rows, _ = data["03_coverage"]
    r = rows[-1]
    sm, mtt = r["acc"]["SelMatch"]["groups"], r["acc"]["MTT"]["groups"]
    hard, easy = paired(sm["hard"], mtt["hard"]), paired(sm["easy"], mtt["easy"])
    gain = lambda part: [a - b for a, b in zip(sm[part]["runs"], mtt[part]["runs"])]   # noqa: E731
    narrows = paired(gain("hard"), gain("easy"))
    return (f"IPC {r['ipc']}: SelMatch − MTT on the hard half {hard}, on the easy half {easy}; hard gain − easy gain "
            f"{narrows}"), combine([narrows.verdict])


def _advantage_shrinks(data, dataset):
    rows = data["09_crossover"]
    final = lambda m: m["final"] if "final" in m else m    # noqa: E731
    first, last = rows[0], rows[-1]
    a, b = paired(final(first["MTT"]), first["Random"]), paired(final(last["MTT"]), last["Random"])
    stat = f"MTT − random: IPC {first['ipc']} {a}, IPC {last['ipc']} {b}"
    if a.low > b.high:
        return stat, HOLDS
    return stat, FAILS if b.low > a.high else UNDECIDED


MIN_DRAWS = 3      # draws at one IPC from which claim (h) is judged on the interval over draws


def _selmatch_beats_all(data, dataset):
    """SelMatch against each method at every ratio, one family under Holm. Where page 05 has at least
    :data:`MIN_DRAWS` draws at a ratio, its comparisons are judged on the interval over draws (which covers the
    random subset, the experts and the distillation); elsewhere on draw 0's seed-paired interval."""
    res, rep = data["05_main_results"], data.get("05_draws", {})
    parts, verdicts, judged = [], [], []
    for ipc, by in res.items():
        ps = {m: paired(by["SelMatch"], by[m]) for m in ("Random", "Sliding window", "MTT")}
        draws = rep.get(ipc, [])
        if len(draws) >= MIN_DRAWS:
            judged.append(ipc)
            over = {m: over_draws(draws, "SelMatch", m) for m in ps}
            parts.append(f"IPC {ipc}, over {len(draws)} draws: " + ", ".join(
                f"vs {m} {over[m]} (draw 0 seed-paired {ps[m]})" for m in ps))
            verdicts += list(over.values())
        else:
            parts.append(f"IPC {ipc}: " + ", ".join(f"vs {m} {p}" for m, p in ps.items()))
            verdicts += list(ps.values())
    stat = "; ".join(parts) + " (the paper's protocol; " + (
        f"judged over draws at IPC {', '.join(map(str, judged))}, elsewhere on one draw whose interval covers the "
        "evaluation seeds only)" if judged else "one draw: the intervals cover the evaluation seeds only)")
    if "05_parts" in data:      # the one-protocol split of SelMatch − window (page 05): shown, not part of the verdict
        stat += (". One protocol, SelMatch − its own iteration 0, the distillation's part of "
                 "SelMatch − window: " + ", ".join(f"IPC {ipc} {paired(s[2], s[1])}"
                                                 for ipc, s in ((i, p["SelMatch"]) for i, p in data["05_parts"].items())))
    return stat, family(verdicts)


def _intermediate_alpha(data, dataset):
    abl = data["04_ablations"]
    parts, verdicts = [], []
    for ipc in sorted({r["ipc"] for r in abl["alpha_rows"]}):
        rows = {r["alpha"]: r for r in abl["alpha_rows"] if r["ipc"] == ipc}
        mids = [r for a, r in rows.items() if 0 < a < 1]
        if not mids or 0.0 not in rows or 1.0 not in rows:
            continue
        best = best_on_val(mids)
        p0, p1 = paired(best, rows[0.0]), paired(best, rows[1.0])
        parts.append(f"IPC {ipc}: α {best['alpha']} (val) vs α 0 {p0}, vs α 1 {p1}")
        verdicts += [p0, p1]
    return "; ".join(parts) or "the grid lacks α = 0, 1 or an intermediate α", family(verdicts)


def _selected_init(data, dataset):
    abl = data["04_ablations"]
    p = paired(abl["init"]["window"], abl["init"]["random"])
    return f"IPC {abl['ipc']}: window − random initialisation {p}", combine([p.verdict])


def _combined_augmentation(data, dataset):
    abl = data["04_ablations"]
    p = paired(abl["aug"]["combined"], abl["aug"]["dsa"])
    return f"IPC {abl['ipc']}: combined − DSA {p}", combine([p.verdict])


def _paper_gap_shrinks(dataset: str) -> str:
    lo, hi = small_ipc_value("MTT", dataset, 1), small_ipc_value("Random", dataset, 1)
    big = _table1_gap("MTT", "Random", dataset, (250, 1500))
    return f"IPC 1: {lo[0] - hi[0]:+.1f} (MTT's paper); {big}" if lo and hi else big


CLAIMS: list[Claim] = [
    Claim("a", "The window start changes accuracy strongly at 5–10 %.", "02_sliding_window",
          lambda d: f"best window − hardest images at {_table1_gap('Sliding window', 'Forgetting (hardest)', d, (250,))}",
          _window_start_matters),
    Claim("b", "The best window gets harder (smaller β) as the ratio grows.", "02_sliding_window",
          lambda d: "β 0.5 → 0.3 → 0.2 → 0.2 at 5 / 10 / 20 / 30 % (official settings)" if d == "cifar10" else "–",
          _best_window_harder),
    Claim("c", "The best window beats random selection at every ratio.", "05_main_results",
          lambda d: _table1_gap("Sliding window", "Random", d, (250, 500, 1000, 1500)), _window_beats_random),
    Claim("d", "At larger IPC MTT covers the real data less than a random subset, and covers hard samples less than "
               "easy ones.", "03_coverage", lambda d: FIGURE, _mtt_coverage),
    Claim("e", "MTT's coverage of hard samples falls over distillation iterations while SelMatch's holds.",
          "03_coverage", lambda d: FIGURE, _coverage_over_iterations),
    Claim("f", "SelMatch narrows MTT's accuracy gap on the hard half of the test set.", "03_coverage",
          lambda d: FIGURE, _hard_half_gap),
    Claim("g", "Distillation's advantage over selection shrinks as IPC grows.", "09_crossover",
          _paper_gap_shrinks, _advantage_shrinks),
    Claim("h", "SelMatch beats random, the best window and MTT at 5–30 %.", "05_main_results",
          lambda d: "vs MTT " + _table1_gap("SelMatch", "MTT", d, (250, 500, 1000, 1500)), _selmatch_beats_all),
    Claim("i", "An intermediate α beats α = 0 (selection only) and α = 1 (everything distilled).", "04_ablations",
          lambda d: FIGURE, _intermediate_alpha),
    Claim("j", "The selection-based initialisation beats a random one at the same α.", "04_ablations",
          lambda d: FIGURE, _selected_init),
    Claim("k", "Combined augmentation beats DSA.", "04_ablations", lambda d: FIGURE, _combined_augmentation),
]


def evaluate_claims(data: dict, dataset: str) -> list[dict]:
    """One row per claim: id, text, page, statistic, verdict, paper. A page missing from ``data`` (not run
    at this profile) leaves its claims 'not tested'."""
    out = []
    for c in CLAIMS:
        if c.page in data:
            stat, verdict = c.test(data, dataset)
        else:
            stat, verdict = "–", "not tested"
        out.append({"id": c.id, "claim": c.text, "page": c.page, "statistic": stat, "verdict": verdict,
                    "paper": c.paper(dataset)})
    return out


def claims_table(claims: list[dict], ctx) -> None:
    """The claims page's table: one row per claim, with a count of verdicts under it."""
    rows = [[c["id"], c["claim"], c["statistic"], f"**{c['verdict']}**", c["paper"], f"{{doc}}`{c['page']}`"]
            for c in claims]
    table(rows, ["", "claim", f"ours ({ctx.profile}, {ctx.dataset})", "verdict", "paper", "page"])
    counts = {v: sum(c["verdict"] == v for c in claims) for v in dict.fromkeys(c["verdict"] for c in claims)}
    show(", ".join(f"{n} {v}" for v, n in counts.items()) + f" — of {len(claims)} claims.")


CLAIM_PAGES = ("02_sliding_window", "03_coverage", "04_ablations", "05_main_results", "09_crossover")


def page_data(profile: str, dataset: str = "cifar10", seed: int = 0, device: str = "cpu") -> dict:
    """Every page's data with the page's own grid (:func:`selmatch.settings.page_grid`) and context (the
    crossover is computed at the profile's redesign, as its page is)."""
    from ...settings import page_grid

    ctx = env_context(profile=profile, dataset=dataset, seed=seed, device=device)
    grid = {name: page_grid(name, profile) for name in CLAIM_PAGES}
    g = grid["02_sliding_window"]
    g5 = grid["05_main_results"]
    main = main_results(ctx, g5["ipcs"], g5["betas"], g5["alphas"], paper=g5["paper_setting"])
    x = grid["09_crossover"]
    return {"02_sliding_window": sliding_window(ctx, g["ipcs"], g["betas"], g["code_betas"], log=lambda m: None),
            "03_coverage": coverage(ctx, **grid["03_coverage"]),
            "04_ablations": ablations(ctx, **grid["04_ablations"]),
            "05_main_results": main,
            "05_parts": decomposition(ctx, main),
            "05_draws": replicated(ctx, main, g5["draw_ipcs"], g5["draws"]) if g5["draws"] > 1 else {},
            "09_crossover": crossover(ctx, x["ipcs"], x["betas"], x["eval_at"])}
