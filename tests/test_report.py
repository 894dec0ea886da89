"""selmatch.companion.report: tables and labels of the book's pages."""
from __future__ import annotations


def test_main_table_labels_full_dataset_numbers_as_orientation(monkeypatch):
    """The 10-class TinyImageNet table shows the paper's 200-class numbers under a header that says so;
    CIFAR-10 keeps the plain paper column."""
    from types import SimpleNamespace

    from selmatch.companion import report

    shown = []
    monkeypatch.setattr(report, "show", shown.append)
    r = {"mean": 30.0, "std": 1.0, "runs": [29, 30, 31], "beta": 0.6, "alpha": 0.25}
    by = {m: r for m in report.METHODS}
    report.main_table({50: by}, SimpleNamespace(dataset="tinyimagenet-c10", profile="cpu"))
    report.main_table({250: by}, SimpleNamespace(dataset="cifar10", profile="cpu"))
    tiny, tiny_note, c10, c10_note = shown
    assert "paper, 200 classes 44.7 ± 0.2" in tiny and "all 200 classes" in tiny_note   # the paper's SelMatch, Tiny 10 %
    assert "200 classes" not in c10 + c10_note and "paper 82.8 ± 0.2" in c10            # CIFAR-10 5 %
    assert "3 runs" in c10_note and "β = 0.6" in c10_note


def test_plateau_is_where_the_next_budget_adds_less_than_a_point():
    from selmatch.companion.report import plateau

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
