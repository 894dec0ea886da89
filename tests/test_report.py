"""selmatch.companion.report and the page modules: tables and labels of the book's pages."""
from __future__ import annotations


def test_main_table_labels_full_dataset_numbers_as_orientation(monkeypatch):
    """The 10-class TinyImageNet table shows the paper's 200-class numbers under a header that says so;
    CIFAR-10 keeps the plain paper column."""
    from types import SimpleNamespace

    from selmatch.companion import report
    from selmatch.companion.pages import main_results as page

    shown = []
    monkeypatch.setattr(page, "show", shown.append)
    monkeypatch.setattr(report, "show", shown.append)       # the tables the page prints through report.table
    r = {"mean": 30.0, "std": 1.0, "runs": [29, 30, 31], "beta": 0.6, "alpha": 0.25, "augmentation": "dsa"}
    by = {m: r for m in page.METHODS}
    page.main_table({50: by}, SimpleNamespace(dataset="tinyimagenet-c10", profile="cpu"))
    page.main_table({250: by}, SimpleNamespace(dataset="cifar10", profile="cpu"))
    tiny, tiny_note, c10, c10_note = shown
    assert "paper, 200 classes 44.7 ± 0.2" in tiny and "all 200 classes" in tiny_note   # the paper's SelMatch, Tiny 10 %
    assert "200 classes" not in c10 + c10_note and "paper 82.8 ± 0.2" in c10            # CIFAR-10 5 %
    assert "3 runs" in c10_note and "β = 0.6" in c10_note


def test_plateau_is_where_the_next_budget_adds_less_than_a_point():
    from selmatch.companion.pages.cpu_profile import plateau

    assert plateau([(1, 50.0), (2, 55.0), (4, 55.5), (8, 55.8)]) == 2
    assert plateau([(1, 50.0), (2, 55.0), (4, 55.5), (8, 60.0)]) is None   # a later budget still adds 4.5
    assert plateau([(4, 50.0), (1, 40.0), (2, 45.0)]) is None              # never levels off
    assert plateau([(1, 50.0), (2, 50.2)], gain=0.1) is None and plateau([(1, 50.0), (2, 50.05)], gain=0.1) == 1


def test_ratio_keeps_small_budgets_readable():
    from selmatch.companion.report import ratio

    assert ratio("cifar10", 1) == "0.02%" and ratio("cifar10", 10) == "0.2%" and ratio("cifar10", 500) == "10%"


def test_method_figure_is_written(tmp_path):
    from selmatch.companion.figures import write

    (path,) = write(tmp_path)
    text = path.read_text()
    assert path.suffix == ".svg" and "<svg" in text and text.count("<text") + text.count("<use") > 10


def test_distillation_budgets_are_judged_against_the_profiles_own_budget(monkeypatch):
    """Each budget is compared with the one every other page uses (paired), and the verdict on "the
    distillation is too short" counts the larger budgets found above it."""
    from types import SimpleNamespace

    from selmatch.companion import report
    from selmatch.companion.pages import ablations as page

    shown = []
    monkeypatch.setattr(page, "show", shown.append)
    monkeypatch.setattr(report, "show", shown.append)       # the tables the page prints through report.table
    ctx = SimpleNamespace(dataset="cifar10", profile="cpu",
                          setting=lambda ipc: SimpleNamespace(distill=SimpleNamespace(iterations=300, syn_steps=10)))

    def row(it, steps, runs):
        return {"method": "MTT", "ipc": 250, "iterations": it, "syn_steps": steps, "runs": runs, "mean": sum(runs) / 5,
                "std": 0.1, "syn_lr": 0.01, "moved_median": 0.1}

    base = [50.0, 51.0, 52.0, 53.0, 54.0]
    rows = [row(100, 10, [r - 3 for r in base]), row(300, 10, base), row(900, 10, [r + 2 + 0.1 * k for k, r in enumerate(base)]),
            row(300, 30, [r + (0.5 if k % 2 else -0.5) for k, r in enumerate(base)])]
    page.distill_budget_conclusions(rows, ctx)
    text = shown[-1]
    assert "against the reference budget 300 × 10 (3000 student steps)" in text
    assert "100 × 10 is below 300 × 10" in text and "900 × 10 is above 300 × 10" in text
    assert "no difference between 300 × 30 and 300 × 10 is detected" in text
    assert "Of 2 larger budget(s), 1 is above the reference and 0 below: more distillation helps here." in text
    page.distill_budget_table(rows, ctx)
    assert shown[-1].count("| – |") == 1                                  # the reference row has no difference


def _acc(runs, augmentation, fraction=None, **extra):
    return {"mean": sum(runs) / len(runs), "std": 0.5, "runs": runs, "augmentation": augmentation,
            "distilled_fraction": fraction, **extra}


def test_the_main_table_says_when_its_columns_mix_augmentations(monkeypatch):
    """A table whose rows were evaluated with different augmentations says so, naming each column's; one whose
    rows share one says that; a row that does not record its augmentation cannot be put in the table."""
    from types import SimpleNamespace

    import pytest

    from selmatch.companion import report
    from selmatch.companion.pages import main_results as page

    shown = []
    monkeypatch.setattr(page, "show", shown.append)
    monkeypatch.setattr(report, "show", shown.append)
    ctx = SimpleNamespace(dataset="cifar10", profile="cpu")
    runs = [60.0, 61.0, 62.0]
    paper = {"Random": _acc(runs, "dsa"), "Sliding window": _acc(runs, "dsa", beta=0.6),
             "MTT": _acc(runs, "combined", 1.0), "SelMatch": _acc(runs, "combined", 0.25, alpha=0.25)}
    page.main_table({250: paper}, ctx)
    note = shown[-1]
    assert "different augmentations" in note
    assert "Random: DSA, one family per batch" in note and "MTT: DSA with one family per image" in note
    assert "SelMatch: crop + flip on real images, DSA with one family per image on distilled ones" in note
    same = {m: _acc(runs, "dsa", beta=0.6, alpha=0.25) for m in page.METHODS}
    page.main_table({250: same}, ctx)
    assert "different" not in shown[-1] and "the same augmentation (DSA, one family per batch)" in shown[-1]
    same["MTT"] = {k: v for k, v in same["MTT"].items() if k != "augmentation"}
    with pytest.raises(ValueError, match="augmentation=None"):
        page.main_table({250: same}, ctx)


def test_the_decomposition_splits_selmatch_minus_the_window_into_augmentation_and_distillation(monkeypatch):
    """(2) − (1) is the augmentation's part, (3) − (2) the distillation's, and the two add up to (3) − (1); the
    caption names the augmentation of each step."""
    from types import SimpleNamespace

    from selmatch.companion import report
    from selmatch.companion.pages import main_results as page
    from selmatch.companion.stats import paired

    shown = []
    monkeypatch.setattr(page, "show", shown.append)
    monkeypatch.setattr(report, "show", shown.append)
    ctx = SimpleNamespace(dataset="cifar10", profile="cpu")
    window = _acc([60.0, 61.0, 62.0, 61.5, 60.5], "dsa")
    start = _acc([61.2, 62.1, 63.3, 62.6, 61.8], "combined", 0.25)
    end = _acc([61.0, 62.4, 63.0, 62.9, 62.1], "combined", 0.25)
    r0, m0, m = _acc([50.0] * 4 + [51.0], "dsa"), _acc([49.0, 49.5, 49.1, 48.8, 50.2], "combined", 1.0), \
        _acc([46.0, 46.1, 45.9, 45.5, 46.8], "combined", 1.0)
    parts = {250: {"SelMatch": (window, start, end), "MTT": (r0, m0, m)}}
    page.decomposition_table(parts, "SelMatch", ctx)
    table, caption = shown[-2:]
    row = table.splitlines()[-1]
    assert str(paired(start, window)) in row and str(paired(end, start)) in row and str(paired(end, window)) in row
    assert paired(start, window).diff + paired(end, start).diff == pytest_approx(paired(end, window).diff)
    assert "Augmentation of (1): DSA, one family per batch" in caption and "crop + flip on real images" in caption
    page.decomposition_table(parts, "MTT", ctx)
    assert "every image is distilled" in shown[-1] and "below" in shown[-2]          # MTT harms its own start here
    page.decomposition_conclusions(parts, ctx)
    assert f"the distillation {paired(end, start)}" in shown[-1]


def pytest_approx(x):
    import pytest

    return pytest.approx(x, abs=1e-9)


def test_too_short_is_refuted_only_when_no_larger_budget_helps_and_some_harm():
    from types import SimpleNamespace

    from selmatch.companion.pages.ablations import too_short_verdict

    ctx = SimpleNamespace(setting=lambda ipc: SimpleNamespace(distill=SimpleNamespace(iterations=300, syn_steps=10)))
    base = [50.0, 51.0, 52.0, 53.0, 54.0]

    def row(it, shift):
        runs = [r + shift + 0.1 * k for k, r in enumerate(base)]
        return {"method": "MTT", "ipc": 250, "iterations": it, "syn_steps": 10, "runs": runs, "mean": sum(runs) / 5}

    ref = {**row(300, 0), "runs": base}
    assert too_short_verdict([ref, row(900, -3)], ctx).endswith("refuted: more distillation made no set better and "
                                                                "some worse")
    assert "supported" in too_short_verdict([ref, row(900, 3)], ctx)
    assert "not decided" in too_short_verdict([ref, row(900, 3), row(600, -3)], ctx)
    assert "does not test this" in too_short_verdict([ref, row(100, -3)], ctx)


def test_replicated_draws_give_an_interval_over_draws_beside_the_seed_paired_one(monkeypatch):
    """Each draw's mean difference is one value; the interval over draws is the t-interval of those values; one
    draw says it has none; a draw count below one is refused, naming it."""
    from types import SimpleNamespace

    import pytest

    from selmatch.companion import report
    from selmatch.companion.pages import main_results as page
    from selmatch.companion.stats import paired, signed

    shown = []
    monkeypatch.setattr(page, "show", shown.append)
    monkeypatch.setattr(report, "show", shown.append)
    ctx = SimpleNamespace(dataset="cifar10", profile="cpu")

    def draw(shift):
        base = [60.0, 61.0, 62.0, 61.0, 60.5]
        return {"Random": _acc(base, "dsa"), "Sliding window": _acc([x + 1 for x in base], "dsa"),
                "MTT": _acc([x - 2 for x in base], "combined", 1.0),
                "SelMatch": _acc([x + shift + 0.1 * k for k, x in enumerate(base)], "combined", 0.25)}

    rep = {500: [draw(1.0), draw(1.4), draw(0.8)]}
    page.draws_table(rep, ctx)
    table, note = shown[-2:]
    row = next(line for line in table.splitlines() if line.startswith("| SelMatch − Random"))
    diffs = [paired(d["SelMatch"], d["Random"]).diff for d in rep[500]]
    assert ", ".join(signed(x) for x in diffs) in row
    assert str(paired(diffs, [0.0] * 3)) in row and row.rstrip(" |").endswith("above")
    assert "3 draws of 5 evaluation runs" in note and "Power:" in note
    page.draws_table({500: [draw(1.0), draw(-0.196), draw(-0.204)]}, ctx)   # draws 1 and 2: +0.004 and -0.004
    row = next(line for line in shown[-2].splitlines() if line.startswith("| SelMatch − Random"))
    assert "+0.004" in row and "-0.004" in row and "0.0," not in row      # a draw's sign is never rounded away
    page.draws_table({500: [draw(1.0)]}, ctx)
    assert "– (one draw)" in shown[-2] and "no interval over draws yet" in shown[-1]
    with pytest.raises(ValueError, match="draws=0"):
        page.replicated(ctx, {500: draw(1.0)}, [500], 0)
    with pytest.raises(ValueError, match=r"draw_ipcs=\[250\]"):
        page.replicated(ctx, {500: draw(1.0)}, [250], 2)


def test_the_paper_beta_row_is_paired_with_the_best_window_of_the_grid(monkeypatch):
    """Page 02: the window at the official β stands beside the grid's best (chosen on validation); a grid with
    no official subset size says so instead of showing an empty table."""
    from types import SimpleNamespace

    from selmatch.companion import report
    from selmatch.companion.pages import sliding_window as page

    assert page.paper_betas("cifar10", [50, 250, 500, 1000, 1500]) == {250: 0.5, 500: 0.3, 1000: 0.2, 1500: 0.2}
    assert page.paper_betas("mnist5k", [250]) == {}
    shown = []
    monkeypatch.setattr(page, "show", shown.append)
    monkeypatch.setattr(report, "show", shown.append)
    ctx = SimpleNamespace(dataset="cifar10", profile="cpu")
    w = lambda beta, val, runs: {"ipc": 250, "start_mode": "fraction", "beta": beta, "val": val,  # noqa: E731
                                 "runs": runs, "mean": sum(runs) / len(runs), "std": 0.1}
    rows = [w(0.2, 50.0, [50.0, 50.1, 49.9]), w(0.6, 60.0, [60.0, 60.2, 59.8]),
            {**w(0.0, 70.0, [70.0] * 3), "start_mode": "ipc"}]            # the code reading never competes
    page.paper_beta_table(rows, {250: w(0.5, 58.0, [58.0, 58.1, 57.9])}, ctx)
    assert "0.5" in shown[0] and "0.6" in shown[0] and "-2.0 [" in shown[0] and "below" in shown[0]
    page.paper_beta_table(rows, {}, ctx)
    assert "none of this grid's IPCs (250)" in shown[-1]


def test_the_pilot_traces_only_the_profile_at_its_further_ipcs(monkeypatch):
    """Page 08: every arm at the pilot's IPCs, and at ``profile_ipcs`` only the profile against its start."""
    from types import SimpleNamespace

    from selmatch.companion.pages import cpu_profile as page

    monkeypatch.setattr(page, "arm_job", lambda ctx, ipc, arm: (ipc, arm))
    monkeypatch.setattr(page, "run", lambda jobs, what: [{"result": {"final": {"runs": [1.0, 2.0]}}} for _ in jobs])
    ctx = SimpleNamespace(profile="cpu")
    rows = page.large_ipc(ctx, [500], ["profile", "late"], [500, 1000])
    assert [(r["ipc"], r["arm"]) for r in rows] == [(500, "start"), (500, "profile"), (500, "late"),
                                                    (1000, "start"), (1000, "profile")]
    assert len(page.large_ipc(ctx, [500], ["late"])) == 2


def test_the_pilot_names_the_arms_it_has_not_run(monkeypatch):
    """Page 08's conclusions name, per IPC where arms ran, each arm of the profile that did not; none at an IPC
    where only the profile is traced."""
    from types import SimpleNamespace

    from selmatch.companion.pages import cpu_profile as page

    shown = []
    monkeypatch.setattr(page, "show", shown.append)
    row = lambda ipc, arm, shift: {"ipc": ipc, "arm": arm, "final": {"runs": [60.0 + shift, 61.0 + shift, 62.0 + shift],  # noqa: E731
                                                                 "mean": 61.0 + shift, "std": 1.0}}
    rows = [row(500, "start", 0), row(500, "profile", -3), row(500, "late", -2), row(1000, "start", 0),
            row(1000, "profile", -1)]
    page.large_ipc_conclusions(rows, SimpleNamespace(profile="cpu", dataset="cifar10"))
    text = shown[-1]
    missing = [a for a in page.ARMS["cpu"] if a not in ("start", "profile", "late")]
    assert f"Not run at IPC 500 at this profile: {', '.join(missing)}" in text
    assert "Not run at IPC 1000" not in text


def test_the_paper_setting_is_a_candidate_only_where_the_official_scripts_set_one():
    """α, β and lr_img from the official scripts; lr_img only when it changes the profile's; no candidate at an
    IPC the scripts do not set, nor for a subset of one of the paper's datasets."""
    from types import SimpleNamespace

    from selmatch.companion.pages.main_results import paper_candidate

    def ctx(dataset):
        return SimpleNamespace(dataset=dataset, setting=lambda ipc: SimpleNamespace(distill=SimpleNamespace(lr_img=1000)))

    assert paper_candidate(ctx("cifar10"), 1000) == {"alpha": 0.1, "beta": 0.2, "distill": {"lr_img": 10000}}
    assert paper_candidate(ctx("cifar10"), 250) == {"alpha": 0.6, "beta": 0.5, "distill": None}
    assert paper_candidate(ctx("tinyimagenet"), 50) == {"alpha": 0.6, "beta": 0.8, "distill": None}
    assert paper_candidate(ctx("cifar10"), 10) is None
    assert paper_candidate(ctx("tinyimagenet-c10"), 50) is None


def test_selmatch_is_chosen_on_validation_among_the_grid_and_the_paper_setting(monkeypatch):
    """With ``paper``, the paper's β joins the window's candidates (and is shown on its own), and the paper's setting
    joins the grid's α at the window's β; the best on the *validation* half
    is SelMatch (even when another is better on test); every candidate is kept; its own β and lr_img go to the
    decomposition's iteration 0; the table pairs the paper's setting with the grid's best and each method."""
    from types import SimpleNamespace

    from selmatch.companion import report
    from selmatch.companion.pages import main_results as page
    from selmatch.companion.paper import fmt
    from selmatch.companion.stats import paired

    shown = []
    monkeypatch.setattr(page, "show", shown.append)
    monkeypatch.setattr(report, "show", shown.append)
    ctx = SimpleNamespace(dataset="cifar10", profile="cpu",
                          setting=lambda ipc: SimpleNamespace(distill=SimpleNamespace(lr_img=1000)))
    base = [60.0, 61.0, 62.0, 61.0, 60.5]
    # (alpha, beta, lr_img) -> (shift on test, validation accuracy)
    outcome = {(0.25, 0.4, None): (1.0, 61.0), (0.5, 0.4, None): (1.5, 60.0), (0.1, 0.2, 10000): (0.5, 62.0)}
    jobs = []

    def selmatch_job(ctx, ipc, alpha, beta, init="window", score="cscore", distill=None, iterations=None):
        jobs.append((ipc, alpha, beta, distill, iterations))
        key = (alpha, beta, (distill or {}).get("lr_img"))
        shift, val = outcome.get(key, (-2.0, 50.0))
        return {"config": {"augmentation": "combined", "alpha": alpha},
                "result": {"final": {**_acc([x + shift for x in base], "combined"), "val": val}, "loss": [1.0, 0.9]}}

    window_val = {0.4: 59.0, 0.2: 58.0}       # the window at the paper's β (0.2 at IPC 1000) is worse on validation
    asked = []

    def best_windows(ctx, ipcs, betas, score):
        per = betas if isinstance(betas, dict) else dict.fromkeys(ipcs, betas)
        asked.append({ipc: sorted(per[ipc]) for ipc in ipcs})
        best = {ipc: max(per[ipc], key=lambda b: window_val.get(b, 0.0)) for ipc in ipcs}
        return {ipc: _acc([x - (0.4 - b) for x in base], "dsa", beta=b, val=window_val.get(b, 0.0))
                for ipc, b in best.items()}

    monkeypatch.setattr(page, "best_windows", best_windows)
    monkeypatch.setattr(page, "random_eval", SimpleNamespace(job=lambda ctx, ipc: {
        "config": {"augmentation": "dsa"}, "result": {"final": _acc([x - 1 for x in base], "dsa")}}))
    monkeypatch.setattr(page, "selmatch_run", SimpleNamespace(job=selmatch_job))
    monkeypatch.setattr(page, "run", lambda jobs, label: list(jobs))

    grid_only = page.main_results(ctx, [1000], [0.4], [0.25, 0.5])[1000]["SelMatch"]
    assert (grid_only["alpha"], grid_only["setting"], len(grid_only["candidates"])) == (0.25, "grid", 2)
    assert asked == [{1000: [0.4]}]           # without the paper's setting, the grid's β alone
    results = page.main_results(ctx, [1000, 1500], [0.4], [0.25, 0.5], paper=True)
    # the paper's β is a window candidate at each IPC, all in one batch, and kept on its own
    assert asked[1:] == [{1000: [0.2, 0.4], 1500: [0.2, 0.4]}, {1000: [0.2]}, {1500: [0.2]}]
    assert results[1000]["Sliding window"]["beta"] == 0.4 and results[1000]["Sliding window"]["paper"]["beta"] == 0.2
    sm = results[1000]["SelMatch"]
    assert (sm["alpha"], sm["beta"], sm["distill"], sm["setting"]) == (0.1, 0.2, {"lr_img": 10000}, "paper")
    assert [c["setting"] for c in sm["candidates"]] == ["grid", "grid", "paper"]
    jobs.clear()
    page.decomposition(ctx, results)
    assert (1000, 0.1, 0.2, {"lr_img": 10000}, 0) in jobs
    page.paper_settings_table(results, ctx)
    table, caption = shown[-2:]
    row = table.splitlines()[-1]
    grid_best = sm["candidates"][0]
    assert "α 0.1, β 0.2, lr_img 10,000" in row and str(paired(sm, grid_best)) in row and "(grid: α 0.25, β 0.4)" in row
    assert str(paired(sm, results[1000]["MTT"])) in row and "IPC 1000: the paper" in caption
    w = results[1000]["Sliding window"]
    assert f"β 0.2: {fmt(w['paper']['mean'], 0.5)}<br>{paired(w['paper'], w)} below (best: β 0.4)" in row
    page.main_table(results, ctx)
    assert "SelMatch α 0.1, β 0.2, lr_img 10,000 (the paper's own setting; chosen on the validation half)" in shown[-1]
    page.paper_settings_table(page.main_results(ctx, [10], [0.4], [0.25], paper=True), ctx)
    assert "none of this page's IPCs (10)" in shown[-1]


def test_a_draw_reruns_every_method_at_its_own_seed_with_the_first_draws_choices(monkeypatch):
    """Draw d: seed + 100·d for all four methods; the window at draw 0's β and SelMatch at draw 0's α, β and lr_img
    (no candidate is rerun); the rows keep what was chosen."""
    from dataclasses import make_dataclass
    from types import SimpleNamespace

    from selmatch.companion.pages import main_results as page

    calls = []

    def record(kind):
        def job(ctx, ipc, *args, **kw):
            calls.append((kind, ctx.seed, ipc, args, kw))
            return {"config": {"augmentation": "dsa", "alpha": args[0] if kind == "selmatch" else 0.0},
                    "result": {"final": _acc([60.0 + ctx.seed / 100] * 3, "dsa"), "loss": [1.0]}}
        return SimpleNamespace(job=job)

    monkeypatch.setattr(page, "random_eval", record("random"))
    monkeypatch.setattr(page, "window_eval", record("window"))
    monkeypatch.setattr(page, "selmatch_run", record("selmatch"))
    monkeypatch.setattr(page, "run", lambda jobs, label: list(jobs))
    ctx = make_dataclass("Ctx", [("seed", int)], frozen=True)(seed=0)
    draw0 = {"Random": _acc([60.0] * 3, "dsa"), "Sliding window": _acc([61.0] * 3, "dsa", beta=0.4),
             "MTT": _acc([59.0] * 3, "combined", 1.0),
             "SelMatch": _acc([62.0] * 3, "combined", 0.1, alpha=0.1, beta=0.2, distill={"lr_img": 10000}, setting="paper")}
    rep = page.replicated(ctx, {1000: draw0}, [1000], 3)
    assert len(rep[1000]) == 3 and rep[1000][0] is draw0
    assert sorted({seed for _, seed, *_ in calls}) == [100, 200] and len(calls) == 8
    assert ("window", 100, 1000, (0.4, "cscore"), {}) in calls
    assert ("selmatch", 200, 1000, (0.1, 0.2), {"score": "cscore", "distill": {"lr_img": 10000}}) in calls
    assert ("selmatch", 100, 1000, (1.0, 0.0), {"init": "random"}) in calls
    d2 = rep[1000][2]
    assert d2["SelMatch"]["setting"] == "paper" and d2["Sliding window"]["beta"] == 0.4 and d2["Random"]["mean"] == 62.0
