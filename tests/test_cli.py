"""The command line end to end: scores -> select -> evaluate -> coverage, and its error messages."""
from __future__ import annotations

import os
import json

import numpy as np
import pytest
import torch

from selmatch.cli import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_mnist_pipeline(tmp_path, capsys):
    scores, sel, res, cov = (tmp_path / n for n in ("scores.npz", "sel.npz", "res.json", "cov.json"))
    code, _, _ = run(capsys, "scores", "--dataset", "mnist5k", "--epochs", "2", "--out", scores)
    assert code == 0
    with np.load(scores) as z:
        assert z["scores"].shape == (4000,) and z["forgetting_test"].shape == (1000,)
        assert json.loads(str(z["params"]))["profile"] == "smoke"
    code, out, _ = run(capsys, "select", "--dataset", "mnist5k", "--score", scores, "--ipc", "20",
                       "--beta", "0.2", "--alpha", "0.5", "--out", sel)
    assert code == 0 and json.loads(out)["n_distill"] == 100
    with np.load(sel) as z:
        assert len(z["select_idx"]) == 100 and len(z["distill_idx"]) == 100
        assert json.loads(str(z["params"]))["beta"] == 0.2
    code, _, _ = run(capsys, "evaluate", "--dataset", "mnist5k", "--selection", sel, "--runs", "1", "--epochs", "3",
                     "--aug", "combined", "--test-scores", scores, "--out", res)
    result = json.loads(res.read_text())
    assert code == 0 and 0 <= result["mean"] <= 100 and set(result["groups"]) == {"easy", "hard"}
    assert result["train"]["augmentation"] == "combined" and result["train"]["epochs"] == 3
    code, _, _ = run(capsys, "coverage", "--dataset", "mnist5k", "--selection", sel, "--score", scores,
                     "--real", "500", "--out", cov)
    c = json.loads(cov.read_text())
    assert code == 0 and c["n_real"] == 500 and 0 <= c["all"] <= 1 and c["radius"] > 0 and "hard" in c


def test_cifar10_select_then_evaluate_smoke(shared_data, tmp_path, capsys):
    sel = tmp_path / "sel.npz"
    code, out, _ = run(capsys, "select", "--dataset", "cifar10", "--score", "cscore", "--ipc", "10", "--beta", "0.5",
                       "--alpha", "0.2", "--out", sel)
    assert code == 0 and json.loads(out)["n_select"] == 80
    code, out, err = run(capsys, "evaluate", "--dataset", "cifar10", "--selection", sel, "--runs", "1")
    result = json.loads(out)
    assert code == 0 and result["mean"] > 14 and "test accuracy" in err   # chance: 10 %
    assert result["selection_params"]["start_mode"] == "fraction" and result["profile"] == "smoke"


@pytest.mark.parametrize("argv,message", [
    (["--ipc", "401"], "ipc=401 must lie in [1, 400]"),
    (["--ipc", "10", "--alpha", "1.5"], "alpha=1.5 must lie in [0, 1]"),
    (["--ipc", "10", "--score", "difficulty"], "score='difficulty' is unknown"),
    (["--ipc", "100", "--beta", "0.9"], "largest valid beta is 0.75"),
])
def test_bad_select_arguments(tmp_path, capsys, argv, message):
    scores = tmp_path / "s.npy"
    np.save(scores, np.arange(4000, dtype=float))
    base = ["select", "--dataset", "mnist5k", "--score", str(scores), "--out", str(tmp_path / "x.npz")]
    code, _, err = run(capsys, *base, *argv)
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "x.npz").exists()


def test_experts_distill_evaluate_smoke(tmp_path, capsys):
    """experts -> distill -> evaluate at the smoke preset on the embedded dataset."""
    dataset = "mnist5k"
    scores = tmp_path / "h.npy"
    np.save(scores, np.random.default_rng(0).random(4000))
    extra = ["--score", str(scores)]
    exp, dist = tmp_path / "exp", tmp_path / "dist"
    assert run(capsys, "experts", "--dataset", dataset, "--out", exp)[0] == 0
    code, out, _ = run(capsys, "distill", "--dataset", dataset, "--experts", exp, "--out", dist, "--eval-at", "0", *extra)
    summary = json.loads(out)
    assert code == 0 and summary["images"] == 100 and summary["distilled"] == 50 and "0" in summary["evals"]
    with np.load(dist / "synset.npz") as z:
        assert z["images"].dtype == np.float32 and z["is_distilled"].sum() == 50
        assert len(z["source_idx"]) == 100 and json.loads(str(z["config"]))["distill"]["iterations"] == 5
    code, out, _ = run(capsys, "evaluate", "--dataset", dataset, "--set", dist / "synset.npz", "--runs", "1",
                       "--aug", "combined")
    assert code == 0 and json.loads(out)["n_distilled"] == 50
    # refusing to mix: a second experts run into the same folder without --resume
    code, _, err = run(capsys, "experts", "--dataset", dataset, "--out", exp, "--epochs", "1")
    assert code == 2 and "different config" in err


def test_distill_synset_keeps_select_images(shared_data, tmp_path, capsys):
    from selmatch import load_dataset

    exp, dist = tmp_path / "exp", tmp_path / "dist"
    assert run(capsys, "experts", "--dataset", "cifar10", "--out", exp)[0] == 0
    assert run(capsys, "distill", "--dataset", "cifar10", "--experts", exp, "--out", dist)[0] == 0
    ds = load_dataset("cifar10", download=False)
    with np.load(dist / "synset.npz") as z:
        images, flags, src = (torch.from_numpy(z[k]) for k in ("images", "is_distilled", "source_idx"))
    real = ds.normalize(ds.x_train[src])
    assert torch.equal(images[~flags], real[~flags])
    assert not torch.equal(images[flags], real[flags])


def test_distill_bad_arguments(tmp_path, capsys):
    scores = tmp_path / "h.npy"
    np.save(scores, np.arange(4000, dtype=float))
    code, _, err = run(capsys, "distill", "--dataset", "mnist5k", "--experts", tmp_path / "none", "--out", tmp_path / "o",
                       "--score", scores)
    assert code == 2 and "config.json is missing" in err


def test_ray_flag_turns_ray_on_unless_a_cluster_is_named(monkeypatch, capsys):
    from selmatch.cli import main

    monkeypatch.setenv("SELMATCH_RAY", "")          # recorded, so the flag's "auto" is undone after the test
    monkeypatch.delenv("SELMATCH_RAY")
    assert main(["rerun", "55", "--ray"]) == 2                      # fails on its input, after reading the flag
    assert os.environ["SELMATCH_RAY"] == "auto"
    monkeypatch.setenv("SELMATCH_RAY", "10.0.0.1:6379")
    main(["rerun", "55", "--ray"])
    assert os.environ["SELMATCH_RAY"] == "10.0.0.1:6379"
    monkeypatch.delenv("SELMATCH_RAY")
    main(["rerun", "55"])
    assert "SELMATCH_RAY" not in os.environ
