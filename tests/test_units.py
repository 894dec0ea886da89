"""selmatch.companion.units: the book's cached units."""
from __future__ import annotations

import pytest
import torch


def test_window_that_does_not_fit_is_cached_so_a_rebuild_needs_no_data(tmp_path, monkeypatch):
    """best_beta skips windows that overflow the class; without data that must be known from the cache."""
    import types

    from selmatch.companion import units as experiments

    y = torch.arange(10).repeat_interleave(10)             # 10 images per class
    fake = types.SimpleNamespace(y_train=y, num_classes=10, source="fake", fingerprint="0" * 64)
    monkeypatch.setattr(experiments, "dataset", lambda name: fake)
    monkeypatch.setattr(experiments, "hardness", lambda ctx, score: torch.rand(len(y)))
    ctx = experiments.Context(profile="smoke", dataset="cifar10", results=str(tmp_path / "results"),
                              runs=str(tmp_path / "runs"))
    with pytest.raises(ValueError, match="beta"):
        experiments.window_eval(ctx, 5, 0.8)               # 0.8 * 10 + 5 > 10
    assert len(list((tmp_path / "results").rglob("window-*.json"))) == 1

    def no_data(name):
        raise FileNotFoundError("no data here")

    monkeypatch.setattr(experiments, "dataset", no_data)
    with pytest.raises(ValueError, match="beta"):          # from the cache: no data needed
        experiments.window_eval(ctx, 5, 0.8)


def test_keys_hold_the_parts_of_the_profile_each_unit_uses(monkeypatch):
    """Editing the evaluation recipe changes what evaluated results depend on, not the scores' key."""
    from dataclasses import replace

    from selmatch import settings
    from selmatch.companion.units import Context

    smoke = settings.get_profile("smoke")
    a = Context(profile="smoke")
    before = (a.evaluation(), a.scores_recipe(), a.base())
    monkeypatch.setitem(settings.PROFILES, "smoke", replace(smoke, eval_full_epochs=0.08, runs=5))
    assert a.evaluation() != before[0]
    assert a.scores_recipe() == before[1] and a.base() == before[2]
    assert a.prof.runs == 5


def test_pictures_read_the_same_distillation_as_its_result(tmp_path, shared_data):
    """distilled_images and selmatch_run share one run folder: the pictures show the images that were evaluated
    (the median change of the pictured images of every class equals the run's, for a window of one image per
    class to distil)."""
    import numpy as np

    from selmatch.companion import units

    ctx = units.Context(profile="smoke", dataset="cifar10", results=str(tmp_path / "results"), runs=str(tmp_path / "runs"))
    run = units.selmatch_run(ctx, 2, 0.5, 0.5, runs=1)["result"]
    folders = list((tmp_path / "runs" / "distill").iterdir())
    pics = units.distilled_images(ctx, 2, 0.5, 0.5, per_class=1)["result"]
    assert list((tmp_path / "runs" / "distill").iterdir()) == folders        # read back, not distilled again
    a = pics["arrays"]
    assert a["before"].shape == a["after"].shape == (10, 32, 32, 3) and a["before"].dtype == np.uint8
    assert sorted(a["labels"].tolist()) == list(range(10)) and len(a["select"]) == 10
    lower_median = np.sort(a["moved"])[(len(a["moved"]) - 1) // 2]        # torch's median of an even count
    assert lower_median == pytest.approx(run["moved_median"], rel=1e-5)
    assert (a["before"] != a["after"]).any()


def test_results_sharing_a_distillation_keep_their_own_evaluations(tmp_path, shared_data, monkeypatch):
    """Notebook 03 (combined augmentation) and the crossover (DSA) distil MTT in one run folder; each result
    records the evaluations it asked for, made its own way, and the second distils nothing. (The evaluation
    is replaced by a record of how it was asked for: the test is about who evaluates, not the accuracy.)"""
    from selmatch.companion import units

    monkeypatch.setattr(units, "test_hardness", lambda ctx: None)
    monkeypatch.setattr(units, "_eval", lambda ctx, ds, images, labels, flags, augmentation, runs, th:
                        {"augmentation": augmentation, "pixels": float(images.double().sum())})
    ctx = units.Context(profile="smoke", dataset="cifar10", results=str(tmp_path / "results"), runs=str(tmp_path / "runs"))
    dsa = units.selmatch_run(ctx, 2, 1.0, 0.0, init="random", augmentation="dsa", eval_at=(0, 2), runs=1)["result"]
    ckpt = next((tmp_path / "runs" / "distill").iterdir()) / "checkpoint.pt"
    written = ckpt.stat().st_mtime_ns
    comb = units.selmatch_run(ctx, 2, 1.0, 0.0, init="random", eval_at=(0, 2), runs=1)["result"]
    assert sorted(dsa["evals"]) == sorted(comb["evals"]) == ["0", "2"]
    assert {e["accuracy"]["augmentation"] for e in dsa["evals"].values()} == {"dsa"}
    assert {e["accuracy"]["augmentation"] for e in comb["evals"].values()} == {"combined"}
    assert [e["accuracy"]["pixels"] for e in comb["evals"].values()] == \
        [e["accuracy"]["pixels"] for e in dsa["evals"].values()]                  # the same images
    assert comb["loss"] == dsa["loss"] and ckpt.stat().st_mtime_ns == written   # evaluated, not distilled again
    assert units.selmatch_run(ctx, 2, 1.0, 0.0, init="random", runs=1)["result"]["evals"] == {}


def test_a_notebook_run_outside_the_runner_never_writes_the_committed_results(tmp_path, monkeypatch):
    """With SELMATCH_RESULTS unset (plain papermill, Jupyter), a page reads the committed results and writes what
    is new into rerun-PROFILE/results; the book's runner and `selmatch rerun` set SELMATCH_RESULTS."""
    from selmatch.companion import units
    from selmatch.companion.cache import cached

    committed = tmp_path / "repo" / "results"
    stored = cached("window", {"ipc": 1}, lambda: {"acc": 50.0}, committed / "smoke")
    monkeypatch.setattr(units, "COMMITTED", committed)
    monkeypatch.delenv("SELMATCH_RESULTS", raising=False)
    monkeypatch.chdir(tmp_path)
    ctx = units.env_context(profile="smoke", dataset="mnist5k")       # mnist5k: embedded, for the provenance
    before = sorted(p.name for p in (committed / "smoke").iterdir())

    def never():
        raise AssertionError("a committed result was computed again")

    old = units._job(ctx, "window", {"ipc": 1}, never)()
    assert old["cached"] and old["result"] == stored["result"]
    new = units._job(ctx, "window", {"ipc": 2}, lambda: {"acc": 60.0})()
    assert not new["cached"]
    assert sorted(p.name for p in (committed / "smoke").iterdir()) == before          # nothing written there
    assert [p.name for p in (tmp_path / "rerun-smoke" / "results" / "smoke").iterdir()] == [f"window-{new['key']}.json"]
    monkeypatch.setenv("SELMATCH_RESULTS", str(tmp_path / "mine"))                      # pointed elsewhere
    assert units.env_context(profile="smoke").root == tmp_path / "mine" / "smoke"
    assert units.env_context(profile="smoke").read_root is None
