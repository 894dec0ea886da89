"""selmatch.companion.pages.claims: each claim's verdict follows the paired rule on its page's data."""
from selmatch.companion.pages.claims import (AGAINST, AS_CLAIMED, CLAIMS, FAILS, HOLDS, NO_DIRECTION, UNDECIDED,
                                             _best_window_harder, combine, evaluate_claims)


def ev(runs, val=None):
    return {"mean": sum(runs) / len(runs), "std": 0.0, "runs": runs, "val": val if val is not None else runs[0]}


def test_combine_needs_every_part_as_claimed():
    assert combine(["above", "above"]) == HOLDS
    assert combine(["above", "no difference"]) == UNDECIDED
    assert combine(["above", "below"]) == FAILS
    assert combine([]) == UNDECIDED


def test_advantage_shrinks_only_when_the_intervals_separate():
    base = [10.0, 12.0, 11.0, 13.0, 12.0]
    big = [x + 20 + 0.2 * i for i, x in enumerate(base)]
    small = [x + 1 + 0.3 * i for i, x in enumerate(base)]
    data = {"09_crossover": [{"ipc": 1, "MTT": {"final": ev(big)}, "Random": ev(base)},
                             {"ipc": 500, "MTT": {"final": ev(small)}, "Random": ev(base)}]}
    row = {r["id"]: r for r in evaluate_claims(data, "cifar10")}["g"]
    assert row["verdict"] == HOLDS and "IPC 1" in row["statistic"] and "IPC 500" in row["statistic"]
    data["09_crossover"].reverse()
    assert {r["id"]: r for r in evaluate_claims(data, "cifar10")}["g"]["verdict"] == FAILS


def test_intermediate_alpha_against_both_ends():
    base = [50.0, 52.0, 49.0]
    rows = [{"ipc": 250, "alpha": 0.0, **ev(base)}, {"ipc": 250, "alpha": 1.0, **ev([b - 3 for b in base])},
            {"ipc": 250, "alpha": 0.25, **ev([b + 2 + 0.1 * i for i, b in enumerate(base)], val=99.0)}]
    data = {"04_ablations": {"alpha_rows": rows, "ipc": 250, "aug": {"combined": ev(base), "dsa": ev(base)},
                             "init": {"window": ev(base), "random": ev(base)}, "beta": {250: 0.6}}}
    by = {r["id"]: r for r in evaluate_claims(data, "cifar10")}
    assert by["i"]["verdict"] == HOLDS
    assert by["k"]["verdict"] == UNDECIDED            # identical runs: the interval is [0, 0]
    assert by["a"]["verdict"] == "not tested" and by["a"]["statistic"] == "–"


def test_every_claim_names_a_page_with_a_notebook():
    from selmatch.companion.book import ROOT

    assert len({c.id for c in CLAIMS}) == len(CLAIMS) >= 11
    for c in CLAIMS:
        assert (ROOT / "notebooks" / f"{c.page}.md").exists(), c.page


def test_coverage_claims_need_a_hundredth_to_decide_and_read_direction_only():
    """Coverage has one set and one probe (n = 1): a verdict is a direction, never 'holds'; MTT is compared with its
    own iteration 0 measured by the same probe."""
    cov = lambda a, e, h: {"all": a, "easy": e, "hard": h}    # noqa: E731
    acc = {"groups": {"hard": {"runs": [1.0, 2.0]}, "easy": {"runs": [3.0, 4.0]}}}
    row = {"ipc": 500, "MTT": cov(0.393, 0.48, 0.307), "random": cov(0.391, 0.47, 0.31),
           "acc": {"MTT": acc, "SelMatch": acc}}
    trace = {n: {"evals": {"0": {"coverage": cov(0.4, 0.5, 0.3)}, "60": {"coverage": cov(0.4, 0.5, 0.3 + d)}}}
             for n, d in (("MTT", -0.001), ("SelMatch", -0.0009))}
    rows = [row]
    by = {r["id"]: r for r in evaluate_claims({"03_coverage": (rows, trace)}, "cifar10")}
    assert by["d"]["verdict"] == NO_DIRECTION      # 0.007 below its start: decides nothing; hard < easy by 0.17 does
    assert by["e"]["verdict"] == NO_DIRECTION and "iteration 0" in by["d"]["statistic"]
    row["MTT"] = cov(0.35, 0.48, 0.307)
    trace["MTT"]["evals"]["60"]["coverage"] = cov(0.4, 0.5, 0.25)
    by = {r["id"]: r for r in evaluate_claims({"03_coverage": (rows, trace)}, "cifar10")}
    assert by["d"]["verdict"] == AS_CLAIMED and by["e"]["verdict"] == AS_CLAIMED
    # SelMatch moves only α of its images: its fall is judged against α × MTT's (-0.0125 at α 0.25)
    row["alpha"] = 0.25
    by = {r["id"]: r for r in evaluate_claims({"03_coverage": (rows, trace)}, "cifar10")}
    assert by["e"]["verdict"] == AS_CLAIMED and "α × MTT's = 0.25 × -0.050 = -0.01" in by["e"]["statistic"]
    trace["SelMatch"]["evals"]["60"]["coverage"] = cov(0.4, 0.5, 0.288)       # -0.012: what α alone gives
    by = {r["id"]: r for r in evaluate_claims({"03_coverage": (rows, trace)}, "cifar10")}
    assert by["e"]["verdict"] == NO_DIRECTION


def test_the_best_window_claim_is_decided_where_the_paper_makes_it():
    """(b) is about 5–30 %: a harder best window at 1 % than at 5 % decides nothing, nor does one ratio alone."""
    def rows(best: dict) -> list[dict]:
        return [{"ipc": ipc, "beta": b, "start_mode": "fraction", "val": 1.0 if b == best[ipc] else 0.0}
                for ipc in best for b in (0.2, 0.4, 0.6, 0.8)]

    def verdict(best):
        stat, verdict = _best_window_harder({"02_sliding_window": (rows(best), None)}, "cifar10")
        return {"statistic": stat, "verdict": verdict}

    b = verdict({50: 0.8, 250: 0.6, 500: 0.6})
    assert b["verdict"] == NO_DIRECTION and "1% left out" in b["statistic"]
    assert verdict({50: 0.8, 250: 0.6, 500: 0.4, 1000: 0.2})["verdict"] == AS_CLAIMED
    assert verdict({50: 0.8, 250: 0.4})["verdict"] == NO_DIRECTION          # one ratio in range
    assert verdict({250: 0.2, 500: 0.6})["verdict"] == AGAINST


def test_the_hard_half_claim_is_the_narrowing_gap_with_both_halves_reported():
    """(f) asks whether SelMatch gains more over MTT on the hard half than on the easy half: a larger gain on the
    easy half is against the claim even when the hard half alone is above."""
    groups = lambda hard, easy: {"groups": {"hard": ev(hard), "easy": ev(easy)}}   # noqa: E731
    cov = {"all": 0.4, "easy": 0.5, "hard": 0.3}
    row = {"ipc": 500, "MTT": cov, "random": cov,
           "acc": {"MTT": groups([30.0, 31.0, 30.5, 29.5, 30.2], [80.0, 81.0, 80.5, 79.5, 80.2]),
                   "SelMatch": groups([34.0, 34.9, 34.6, 33.4, 34.3], [88.0, 89.2, 88.4, 87.6, 88.1])}}
    trace = {n: {"evals": {"0": {"coverage": {"all": 0.4, "easy": 0.5, "hard": 0.3}}}} for n in ("MTT", "SelMatch")}
    f = {r["id"]: r for r in evaluate_claims({"03_coverage": ([row], trace)}, "cifar10")}["f"]
    assert "on the hard half +4.0" in f["statistic"] and "on the easy half +8.0" in f["statistic"]
    assert f["verdict"] == FAILS


def test_a_claim_of_many_comparisons_is_corrected_family_wise():
    """Twelve comparisons at p just under 0.05 each: significant alone, not after Holm's correction, so (h) is not
    decided rather than failed or held."""
    from selmatch.companion.stats import holm, paired

    base = [50.0, 51.0, 49.0, 52.0, 50.5]
    weak = [b + d for b, d in zip(base, [0.2, 1.4, 0.5, 1.0, 0.3])]      # above alone (p about 0.03)
    p = paired(weak, base)
    assert p.verdict == "above" and 0.01 < p.p < 0.05
    assert holm([p] * 12) == ["no difference"] * 12 and holm([p]) == ["above"]
    by = {m: ev(base) for m in ("Random", "Sliding window", "MTT")}
    data = {"05_main_results": {ipc: {**by, "SelMatch": ev(weak)} for ipc in (250, 500, 1000, 1500)}}
    assert {r["id"]: r for r in evaluate_claims(data, "cifar10")}["h"]["verdict"] == UNDECIDED


def test_the_intro_summary_is_written_from_the_committed_cpu_results(monkeypatch):
    """The intro's summary reads every page it cites from the committed `cpu` results, computing nothing (no data
    is given, so a missing result fails here); it falls back to a one-line note only for a build without results,
    so a bug in it would otherwise hide behind that note."""
    from selmatch.companion.book import ROOT
    from selmatch.companion.report import ratio
    from selmatch.companion.status import summary_page
    from selmatch.settings import page_grid

    monkeypatch.delenv("SELMATCH_DATA", raising=False)
    monkeypatch.setenv("SELMATCH_DATA", str(ROOT / "no-data-here"))
    monkeypatch.setenv("SELMATCH_RESULTS", str(ROOT / "results"))
    text = summary_page("cpu")
    assert not text.startswith("*No results summary"), text
    assert "*What reproduces.*" in text and "*What does not, and what was tested as its cause.*" in text
    assert text.count("| 5% (IPC 250) |") == 1 and "augmentation | distillation |" in text
    assert "| SelMatch's setting (val) |" in text and "| 5% (IPC 250) | α " in text
    draws = page_grid("05_main_results", "cpu")        # the interval over draws, where the grid has them
    for ipc in draws["draw_ipcs"] if draws["draws"] > 1 else ():
        assert f"Over {draws['draws']} independent draws at {ratio('cifar10', ipc)} (IPC {ipc}" in text


def test_the_headline_is_judged_over_draws_where_page_05_has_three():
    """Draw 0 alone puts SelMatch clearly above everything at IPC 1000; two more draws that disagree make the
    interval over draws straddle 0 there, so (h) is no longer decided. With two draws the seed-paired interval
    still decides (the page's minimum is three), and three draws all clearly above hold."""
    from selmatch.companion.pages.claims import MIN_DRAWS

    base = [50.0, 51.0, 49.0, 52.0, 50.5]

    def draw(shift):
        by = {m: ev(base) for m in ("Random", "Sliding window", "MTT")}
        return {**by, "SelMatch": ev([b + shift + 0.1 * i for i, b in enumerate(base)])}

    main = {ipc: draw(3.0) for ipc in (250, 1000)}
    h = lambda data: {r["id"]: r for r in evaluate_claims(data, "cifar10")}["h"]
    assert h({"05_main_results": main})["verdict"] == HOLDS
    assert MIN_DRAWS == 3
    undecided = h({"05_main_results": main, "05_draws": {1000: [main[1000], draw(-2.0), draw(0.5)]}})
    assert undecided["verdict"] == UNDECIDED
    assert "IPC 1000, over 3 draws: vs Random" in undecided["statistic"] and "judged over draws at IPC 1000" in undecided["statistic"]
    assert h({"05_main_results": main, "05_draws": {1000: [main[1000], draw(-2.0)]}})["verdict"] == HOLDS
    assert h({"05_main_results": main, "05_draws": {1000: [main[1000], draw(2.5), draw(3.5)]}})["verdict"] == HOLDS
