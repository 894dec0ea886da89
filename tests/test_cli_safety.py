"""The command line under a hostile-but-fair user: nothing lost, nothing mislabelled, every expected mistake
answered in one line (exit code 2) naming the argument or file (a bad-input sweep's cases, in its order)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from selmatch.cli import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, out.out, out.err


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """Smoke experts and hardness scores for mnist5k, shared by the tests of this module."""
    d = tmp_path_factory.mktemp("cli")
    np.save(d / "h.npy", np.random.default_rng(0).random(4000))
    assert main(["experts", "--dataset", "mnist5k", "--out", str(d / "exp")]) == 0
    return d


def distill_args(workdir, out, *extra, experts=None):
    return ["distill", "--dataset", "mnist5k", "--experts", experts or workdir / "exp", "--score", workdir / "h.npy",
            "--out", out, *extra]


def copied_experts(workdir, tmp_path):
    """A copy of the module's experts to tamper with."""
    import shutil

    return Path(shutil.copytree(workdir / "exp", tmp_path / "exp"))


# 1. data loss
def test_distill_refuses_a_finished_run_unless_asked(workdir, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(capsys, *distill_args(workdir, out))[0] == 0
    before = (out / "synset.npz").read_bytes()
    code, _, err = run(capsys, *distill_args(workdir, out, "--lr-img", "50"))
    assert code == 2 and "holds an earlier run (synset.npz, history.json, checkpoint.pt)" in err
    assert (out / "synset.npz").read_bytes() == before
    assert run(capsys, *distill_args(workdir, out, "--lr-img", "50", "--force"))[0] == 0
    assert (out / "synset.npz").read_bytes() != before
    code, _, err = run(capsys, *distill_args(workdir, out, "--resume", "--force"))
    assert code == 2 and "pass one" in err


# 2. resume with another configuration: the finished run's synset and its checkpoint each refuse it
@pytest.mark.parametrize("change, field", [(["--lr-img", "7"], "distill.lr_img: 100"), (["--seed", "3"], "seed: 0 -> 3"),
                                          (["--beta", "0.1"], "selection.beta"), (["--ipc", "8"], "selection.ipc: 10 -> 8")])
@pytest.mark.parametrize("finished", [True, False])
def test_resume_refuses_another_configuration(workdir, tmp_path, capsys, change, field, finished):
    out = tmp_path / "run"
    assert run(capsys, *distill_args(workdir, out, "--iterations", "2"))[0] == 0
    if not finished:                     # interrupted: the checkpoint alone says what the run was
        (out / "synset.npz").unlink()
        field = {"selection.beta": "identity.indices", "selection.ipc: 10 -> 8": "n_distill: 50 -> 40"}.get(field, field)
    before = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}
    code, _, err = run(capsys, *distill_args(workdir, out, "--resume", *change))
    assert code == 2 and ("holds a finished run of another configuration" if finished else "belongs to another run") \
        in err and field in err, err
    assert {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()} == before
    assert run(capsys, *distill_args(workdir, out, "--resume"))[0] == 0          # the same run continues (to 5)


def test_resume_never_replaces_a_finished_run_whose_checkpoint_is_gone(workdir, tmp_path, capsys):
    """A finished synset is the record of its run: without a checkpoint, --resume with fewer iterations or another
    seed is refused, the synset kept; the same run (or a longer one) goes ahead."""
    out = tmp_path / "run"
    assert run(capsys, *distill_args(workdir, out, "--iterations", "4"))[0] == 0
    (out / "checkpoint.pt").unlink()
    kept = (out / "synset.npz").read_bytes()
    for change, field in ((["--iterations", "2"], "distill.iterations: 4 -> 2"), (["--seed", "7"], "seed: 0 -> 7")):
        code, _, err = run(capsys, *distill_args(workdir, out, "--resume", *change))
        assert code == 2 and field in err and "move synset.npz aside" in err and "delete" not in err, err
        assert (out / "synset.npz").read_bytes() == kept
    from selmatch.artifacts import load_synset

    first = load_synset(out / "synset.npz").images
    assert run(capsys, *distill_args(workdir, out, "--resume", "--iterations", "4"))[0] == 0
    assert torch.equal(load_synset(out / "synset.npz").images, first)      # the same run again (deterministic)


@pytest.mark.parametrize("bad, message", [(["--lr-img", "-1"], "lr_img=-1.0 must be"),
                                          (["--experts", "nowhere"], "nowhere/config.json is missing")])
def test_force_checks_the_whole_command_before_it_removes_anything(workdir, tmp_path, capsys, bad, message):
    out = tmp_path / "run"
    assert run(capsys, *distill_args(workdir, out, "--iterations", "2"))[0] == 0
    before = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}
    args = distill_args(workdir, out, "--force")
    if bad[0] == "--experts":
        args[args.index(workdir / "exp")] = tmp_path / "nowhere"
    else:
        args += bad
    code, _, err = run(capsys, *args)
    assert code == 2 and message in err, err
    assert {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()} == before


# 3. experts of another dataset or of unknown origin
def test_experts_resume_refuses_other_data_and_unknown_folders(workdir, tmp_path, capsys):
    import shutil

    mixed = tmp_path / "exp"
    shutil.copytree(workdir / "exp", mixed)
    record = json.loads((mixed / "config.json").read_text())
    record["identity"]["dataset"] = "cifar10"
    (mixed / "config.json").write_text(json.dumps(record))
    code, _, err = run(capsys, "experts", "--dataset", "mnist5k", "--out", mixed, "--resume")
    assert code == 2 and "identity.dataset: 'cifar10' -> 'mnist5k'" in err
    (mixed / "config.json").unlink()
    code, _, err = run(capsys, "experts", "--dataset", "mnist5k", "--out", mixed, "--resume", "--epochs", "4")
    assert code == 2 and "no config.json" in err and len(list(mixed.glob("expert_*.pt"))) == 2
    assert run(capsys, "experts", "--dataset", "mnist5k", "--out", mixed, "--force", "--num-experts", "1")[0] == 0
    assert len(list(mixed.glob("expert_*.pt"))) == 1


def test_a_foreign_expert_file_is_refused_by_experts_and_distill(workdir, tmp_path, capsys):
    """Each expert file records what made it: one copied in from another run (another seed) is named, by
    ``experts --resume`` (which keeps config.json as it was) and by ``distill``, never silently used."""
    import shutil

    other = tmp_path / "other"
    assert run(capsys, "experts", "--dataset", "mnist5k", "--out", other, "--seed", "9", "--num-experts", "1")[0] == 0
    mixed = tmp_path / "exp"
    shutil.copytree(workdir / "exp", mixed)
    config = (mixed / "config.json").read_bytes()
    shutil.copy(other / "expert_0000.pt", mixed / "expert_0001.pt")
    code, _, err = run(capsys, "experts", "--dataset", "mnist5k", "--out", mixed, "--resume")
    assert code == 2 and "expert_0001.pt was made by another configuration" in err and "seed: 9 -> 0" in err, err
    assert (mixed / "config.json").read_bytes() == config
    code, _, err = run(capsys, *distill_args(workdir, tmp_path / "run", "--iterations", "20"))   # the good folder
    assert code == 0
    code, _, err = run(capsys, *distill_args(workdir, tmp_path / "run2", "--iterations", "20", experts=mixed))
    assert code == 2 and "expert_0001.pt was made by another configuration" in err, err


def test_experts_of_another_dataset_are_named_as_such(workdir, tmp_path, capsys):
    exp = copied_experts(workdir, tmp_path)
    record = json.loads((exp / "config.json").read_text())
    record["identity"]["dataset"] = "cifar10"
    (exp / "config.json").write_text(json.dumps(record))
    code, _, err = run(capsys, *distill_args(workdir, tmp_path / "run", "--iterations", "2", experts=exp))
    assert code == 2 and "were trained on dataset 'cifar10', not 'mnist5k'" in err, err


def test_experts_resume_keeps_the_folders_record(workdir, tmp_path, capsys):
    exp = copied_experts(workdir, tmp_path)
    before = (exp / "config.json").read_bytes()
    assert run(capsys, "experts", "--dataset", "mnist5k", "--out", exp, "--resume", "--num-experts", "3")[0] == 0
    assert (exp / "config.json").read_bytes() == before and len(list(exp.glob("expert_*.pt"))) == 3


# 4. learning rates
@pytest.mark.parametrize("value", ["inf", "nan", "-1"])
def test_non_finite_learning_rates_are_refused(workdir, tmp_path, capsys, value):
    code, _, err = run(capsys, *distill_args(workdir, tmp_path / "o", "--lr-img", value))
    assert code == 2 and f"lr_img={value}" in err and "must be a finite number > 0" in err


# 5. silent wrong results
def test_selections_and_synsets_are_checked_against_the_dataset(tmp_path, capsys):
    sel = tmp_path / "sel.npz"
    assert run(capsys, "select", "--dataset", "mnist5k", "--random", "--ipc", "5", "--out", sel)[0] == 0
    base = ["evaluate", "--dataset", "mnist5k", "--runs", "1", "--epochs", "1"]
    with np.load(sel) as z:
        arrays = dict(z)
    bad = {"negative": {**arrays, "select_idx": arrays["select_idx"] - 10_000},
           "float": {**arrays, "select_idx": arrays["select_idx"].astype(float)},
           "other": {**arrays, "params": np.array(json.dumps({"dataset": "cifar10"}))}}
    messages = {"negative": "outside mnist5k's training set", "float": "must be a 1-D array of integer indices",
                "other": "was made for dataset 'cifar10', not 'mnist5k'"}
    for name, content in bad.items():
        np.savez(tmp_path / f"{name}.npz", **content)
        code, _, err = run(capsys, *base, "--selection", tmp_path / f"{name}.npz")
        assert code == 2 and messages[name] in err, name
    synset = {"images": np.full((2, 1, 28, 28), np.nan, np.float32), "labels": np.array([0, 1]),
              "is_distilled": np.array([True, False])}
    np.savez(tmp_path / "nan.npz", **synset)
    code, _, err = run(capsys, *base, "--selection", tmp_path / "nan.npz")
    assert code == 2 and "NaN or infinite pixels" in err
    for flag, value, message in (("--runs", "0", "runs=0 must be >= 1"), ("--lr", "inf", "lr=inf must be a finite"),
                                 ("--real", "-5", "n_real=-5 must be at least")):
        cmd = "coverage" if flag == "--real" else "evaluate"
        code, _, err = run(capsys, cmd, "--dataset", "mnist5k", "--selection", sel, flag, value, "--epochs", "1")
        assert code == 2 and message in err, flag


def test_out_is_the_file_written(tmp_path, capsys):
    code, out, _ = run(capsys, "select", "--dataset", "mnist5k", "--random", "--ipc", "5", "--out", tmp_path / "x")
    assert code == 0 and json.loads(out)["out"].endswith("x") and (tmp_path / "x").exists()
    assert not (tmp_path / "x.npz").exists()


def test_the_api_refuses_what_the_cli_would(tmp_path):
    from selmatch import sliding_window

    labels = torch.arange(10).repeat_interleave(20)
    with pytest.raises(ValueError, match=r"num_classes=5 but the labels lie in \[0, 9\]"):
        sliding_window(torch.rand(200).double(), labels, 5, 0.0, 0.0, num_classes=5)
    scores = torch.rand(200).double()
    scores[3] = float("nan")
    with pytest.raises(ValueError, match="scores has 1 NaN or infinite values"):
        sliding_window(scores, labels, 5, 0.0, 0.0)


# 6. ordinary mistakes, one line
def test_ordinary_mistakes_are_one_line(workdir, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cases = [
        (["select", "--dataset", "mnist5k", "--random", "--ipc", "5", "--out", blocker / "sel.npz"], "a-file"),
        (["select", "--dataset", "mnist5k", "--random", "--ipc", "5", "--out", blocker], "exists; pass --force"),
        (["select", "--dataset", "mnist5k", "--score", workdir / "h.npy", "--ipc", "5", "--beta", "inf", "--out",
          tmp_path / "s.npz"], "beta=inf must be a finite number"),
        (["select", "--dataset", "mnist5k", "--score", workdir / "h.npy", "--ipc", "5", "--beta", "nan", "--out",
          tmp_path / "s.npz"], "beta=nan must be a finite number"),
        (["experts", "--dataset", "mnist5k", "--max-per-class", "0", "--out", tmp_path / "e"], "max_per_class=0 must be >= 1"),
    ]
    for argv, message in cases:
        code, _, err = run(capsys, *argv)
        assert code == 2 and message in err and err.count("\n") == 1, (argv, err)
    damaged = tmp_path / "d"
    damaged.mkdir()
    (damaged / "checkpoint.pt").write_bytes(b"PK\x03\x04 this is not a checkpoint")
    code, _, err = run(capsys, *distill_args(workdir, damaged, "--resume"))
    assert code == 2 and "checkpoint.pt is damaged or not a selmatch file" in err and "weights_only=False" not in err
    with pytest.raises(SystemExit) as exit_:
        main(["distill", "--dataset", "mnist5k", "--experts", "x", "--out", "y", "--eval-at", "abc"])
    assert exit_.value.code == 2 and "argument --eval-at: 'abc' is not a comma-separated list" in capsys.readouterr().err


# 7. nothing computed before the output is known to be writable; results printed before they are written
def test_results_are_printed_before_a_failing_write(tmp_path, capsys, monkeypatch):
    import selmatch.cli as cli

    sel = tmp_path / "sel.npz"
    assert run(capsys, "select", "--dataset", "mnist5k", "--random", "--ipc", "5", "--out", sel)[0] == 0

    def disk_full(path, write):
        raise OSError(f"could not write {path}: No space left on device")

    monkeypatch.setattr(cli, "atomic_write", disk_full)
    code, out, err = run(capsys, "evaluate", "--dataset", "mnist5k", "--selection", sel, "--runs", "1", "--epochs", "1",
                         "--out", tmp_path / "r.json")
    assert code == 2 and "No space left" in err and 0 < json.loads(out)["mean"] <= 100


def test_an_unwritable_output_fails_before_any_training(tmp_path, capsys, monkeypatch):
    import selmatch.pipeline as pipeline

    monkeypatch.setattr(pipeline, "evaluate_set", lambda *a, **k: pytest.fail("trained before checking --out"))
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    sel = tmp_path / "sel.npz"
    assert run(capsys, "select", "--dataset", "mnist5k", "--random", "--ipc", "5", "--out", sel)[0] == 0
    code, _, err = run(capsys, "evaluate", "--dataset", "mnist5k", "--selection", sel, "--out", blocker / "r.json")
    assert code == 2 and "a-file" in err


def test_an_unwritable_cache_only_costs_the_decode(tmp_path, monkeypatch):
    from selmatch import load_dataset

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("SELMATCH_CACHE", str(blocker / "cache"))
    with pytest.warns(UserWarning, match="cannot write the decoded-tensor cache"):
        ds = load_dataset("mnist5k")
    assert len(ds.y_train) == 4000


@pytest.mark.parametrize("value, message", [("garbage", "Ray could not be reached"), ("auto", "which is not installed")])
def test_ray_asked_for_but_missing_is_one_line_before_anything_is_written(tmp_path, value, message):
    """In a process of its own, as a user runs it (a Ray that another test started here would answer instead)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, SELMATCH_RAY=value)
    code = "import sys; sys.modules['ray'] = None\n" if value == "auto" else ""     # as if Ray were not installed
    code += "from selmatch.cli import main; raise SystemExit(main(sys.argv[1:]))"
    r = subprocess.run([sys.executable, "-c", "import sys\n" + code, "experts", "--dataset", "mnist5k", "--out",
                        str(tmp_path / "exp")], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr[-2000:]
    assert not (tmp_path / "exp").exists()


def test_a_selection_stripped_of_its_parameters_is_refused(tmp_path, capsys):
    """A selection whose metadata was removed could index any dataset: it is refused, naming the file."""
    sel = tmp_path / "sel.npz"
    assert run(capsys, "select", "--dataset", "mnist5k", "--random", "--ipc", "5", "--out", sel)[0] == 0
    with np.load(sel) as z:
        arrays = {k: z[k] for k in z.files if k != "params"}
    np.savez(sel, **arrays)
    code, _, err = run(capsys, "evaluate", "--dataset", "mnist5k", "--selection", sel, "--runs", "1", "--epochs", "1")
    assert code == 2 and "sel.npz: a selection without its parameters" in err, err


@pytest.mark.parametrize("extra, message", [
    (["-p", "ipcs", "[50,"], "-p ipcs '[50,' is not valid YAML"),
    (["-p", "betas", "0.5"], "betas=0.5 must be a list[float], e.g. -p betas"),
    (["-p", "seed", "1.5"], "seed=1.5 must be an int"),
    (["-p", "ipcs", "[0]"], "ipcs=[0]: 0 is not a whole number >= 1"),
    (["-p", "betas", "[1.5]"], "betas=[1.5]: 1.5 is not in [0, 1)"),
    (["-p", "profile", "bogus"], "profile='bogus' is unknown; valid: smoke, cpu, lesson, paper"),
    (["-p", "device", "cuda:7"], "device='cuda:7' is not available"),
    (["-p", "profile", "bogus", "--prepare-only"], "profile='bogus' is unknown"),
    (["-p", "nope", "1"], "02_sliding_window has no parameter nope"),
])
def test_rerun_checks_every_parameter_before_a_kernel_starts(tmp_path, capsys, extra, message):
    code, _, err = run(capsys, "rerun", "02", "--profile", "smoke", "--into", tmp_path / "r", *extra)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


def test_rerun_params_files_and_reuse_are_checked(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("profile: smoke\nipcs: [10,\n")
    code, _, err = run(capsys, "rerun", "02", "--params", bad, "--into", tmp_path / "r")
    assert code == 2 and f"the params file {bad} is not valid YAML" in err, err
    bare = tmp_path / "bare.yaml"
    bare.write_text("ipcs: [10]\n")
    code, _, err = run(capsys, "rerun", "02", "--params", bare, "--reuse", "--into", tmp_path / "r")
    assert code == 2 and "--reuse copies the committed results of a profile" in err, err


def test_rerun_into_a_folder_with_an_executed_page_asks_for_force(tmp_path, capsys):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "02_sliding_window.ipynb").write_text("{}")
    code, _, err = run(capsys, "rerun", "02", "--profile", "smoke", "--into", tmp_path / "r")
    assert code == 2 and "already holds an executed 02_sliding_window.ipynb; pass --force" in err, err
    assert (tmp_path / "r" / "02_sliding_window.ipynb").read_text() == "{}"
    assert run(capsys, "rerun", "02", "--profile", "smoke", "--into", tmp_path / "r", "--force", "--prepare-only")[0] == 0


def test_the_smaller_cases_name_what_is_wrong(tmp_path, capsys):
    """An output path through a regular file, a learning rate past float32, a selection whose metadata is not
    JSON, and the API's sliding window given arrays, lists, a float IPC or too many classes."""
    import numpy as np

    from selmatch import DistillConfig, sliding_window

    blocker = tmp_path / "afile"
    blocker.write_text("x")
    code, _, err = run(capsys, "select", "--dataset", "mnist5k", "--random", "--ipc", "5", "--out", blocker / "s.npz")
    assert code == 2 and f"{blocker} is a file, not a folder" in err, err
    with pytest.raises(ValueError, match=r"lr_img=1e\+300 must be at most 3.4e\+38"):
        DistillConfig(lr_img=1e300)
    sel = tmp_path / "sel.npz"
    assert run(capsys, "select", "--dataset", "mnist5k", "--random", "--ipc", "5", "--out", sel)[0] == 0
    with np.load(sel) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["params"] = np.array("{not json")
    np.savez(sel, **arrays)
    code, _, err = run(capsys, "evaluate", "--dataset", "mnist5k", "--selection", sel, "--runs", "1", "--epochs", "1")
    assert code == 2 and "sel.npz: its metadata is not JSON" in err, err
    y, h = np.repeat(np.arange(10), 20), np.random.default_rng(0).random(200)
    assert sliding_window(h, y, 5, 0.5, 0.5).params["ipc"] == sliding_window(list(h), list(y), 5, 0.5, 0.5).params["ipc"]
    with pytest.raises(ValueError, match="ipc=2.5 must be a whole number"):
        sliding_window(h, y, 2.5, 0.5, 0.5)
    with pytest.raises(ValueError, match="num_classes=12 but class 10 has no images"):
        sliding_window(h, y, 5, 0.5, 0.5, num_classes=12)


def test_a_score_record_of_a_future_format_is_refused_by_select(tmp_path, capsys):
    scores = tmp_path / "scores.npz"
    np.savez(scores, format=np.array("selmatch-scores/99"), scores=np.random.default_rng(0).random(4000))
    code, _, err = run(capsys, "select", "--dataset", "mnist5k", "--ipc", "5", "--beta", "0.5", "--score", scores,
                       "--out", tmp_path / "sel.npz")
    assert code == 2 and "scores format version 99; this selmatch reads version" in err, err
    assert not (tmp_path / "sel.npz").exists()
