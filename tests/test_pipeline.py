"""selmatch.pipeline: the command line and the book run the same steps with one evaluation protocol."""
from __future__ import annotations

import json

import pytest
import torch

from selmatch import load_dataset, pipeline, selection_set
from selmatch.cli import main
from selmatch.settings import get_profile


def test_cli_evaluate_gives_the_books_numbers(tmp_path, capsys):
    """`selmatch select` + `selmatch evaluate` on a random subset equal the book's cached unit for it."""
    from selmatch.companion import units

    sel, out = tmp_path / "sel.npz", tmp_path / "res.json"
    assert main(["select", "--dataset", "mnist5k", "--random", "--ipc", "10", "--seed", "0", "--out", str(sel)]) == 0
    assert main(["evaluate", "--dataset", "mnist5k", "--selection", str(sel), "--profile", "smoke", "--seed", "0",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    cli = json.loads(out.read_text())
    ctx = units.Context(profile="smoke", dataset="mnist5k", seed=0, results=str(tmp_path / "results"),
                        runs=str(tmp_path / "runs"))
    book = units.random_eval(ctx, 10)["result"]
    assert book["runs"] == cli["runs"] and book["val"] == cli["val"] and len(cli["runs"]) == get_profile("smoke").runs
    assert (book["n_test"], book["n_val"], book["epochs"]) == (cli["n_test"], cli["n_val"], cli["epochs"])
    assert cli["mean"] > 30                                                  # trained, not chance (10 %)


def test_evaluation_protocol_halves():
    ds = load_dataset("mnist5k")
    prof = get_profile("smoke")
    split = pipeline.test_split(ds, prof)
    assert len(split.y) == prof.test_subset and not (split.val & split.test).any() and (split.val | split.test).all()
    assert torch.bincount(split.y[split.val]).tolist() == [50] * 10            # class-balanced halves
    x, y, distilled = selection_set(ds, pipeline.initial_selection(ds, init="random", ipc=5, alpha=0.0))
    hard = torch.arange(len(ds.y_test)).double()
    res = pipeline.evaluate_set(ds, x, y, distilled, prof, runs=1, test_hardness=hard)
    assert set(res["groups"]) == {"easy", "hard"} and res["n_test"] == res["n_val"] == 500
    with pytest.raises(ValueError, match="test_hardness has 3 values but mnist5k has 1000 test images"):
        pipeline.evaluate_set(ds, x, y, distilled, prof, runs=1, test_hardness=torch.zeros(3))


def test_initial_selection_checks_its_arguments():
    ds = load_dataset("mnist5k")
    with pytest.raises(ValueError, match="init='greedy' is unknown; valid: window, random"):
        pipeline.initial_selection(ds, init="greedy", ipc=5, alpha=0.5)
    with pytest.raises(ValueError, match="needs the hardness"):
        pipeline.initial_selection(ds, init="window", ipc=5, alpha=0.5)
    mtt = pipeline.initial_selection(ds, init="random", ipc=5, alpha=1.0, seed=3)
    assert len(mtt.select_idx) == 0 and len(mtt.distill_idx) == 50
