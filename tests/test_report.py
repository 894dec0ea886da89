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
    r = {"mean": 30.0, "std": 1.0, "runs": [29, 30, 31], "beta": 0.6, "alpha": 0.25}
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
