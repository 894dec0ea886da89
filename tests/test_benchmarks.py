"""The benchmark harness measures what it says (tiny shapes here; the figures themselves come from `make bench`)."""
from __future__ import annotations

import json

import pytest

from benchmarks.__main__ import main as bench_main
from benchmarks.targets import TARGETS, met
from benchmarks.workloads import run_distill, run_train


def test_target_comparisons():
    assert met(2.9, "<=", 3.0) and not met(3.1, "<=", 3.0)
    assert met(531, ">=", 530.4) and not met(500, ">=", 530.4)
    assert met(None, "<=", 1.0) is None
    assert len({k for k, *_ in TARGETS}) == len(TARGETS) == 15


@pytest.mark.parametrize("memory", ["default", "recompute", "constant"])
def test_distill_workload_reports_ratio_and_memory(memory):
    r = run_distill("convnet", 2, memory, width=4, n=20, batch=10, plain_reps=1)
    assert r["step_s"] > 0 and r["plain_s"] > 0 and r["peak_gb"] > 0.05
    assert r["ratio"] == pytest.approx(r["step_s"] / r["plain_s"])


def test_train_workload_throughput():
    r = run_train("convnet", n=40, batch=16, augmentation="combined", epochs=1, width=4)
    assert r["img_s"] == pytest.approx(40 / r["seconds"])


def test_bench_reports_unmeasured_targets_and_writes_json(tmp_path, capsys):
    assert bench_main(["--only", "book", "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1].startswith("targets met: ") and out.strip().endswith(f"/{len(TARGETS)}")
    rec = json.loads((tmp_path / "r.json").read_text())
    assert [t["key"] for t in rec["targets"]] == [k for k, *_ in TARGETS]
    with pytest.raises(SystemExit):
        bench_main(["--reps", "0"])


def test_profile_of_the_unroll_lists_operators(capsys):
    from benchmarks.profile_unroll import main as profile_main

    assert profile_main(["--syn-steps", "1", "--width", "4", "--rows", "3"]) == 0
    out = capsys.readouterr().out
    assert "distillation iteration, 1 unrolled steps" in out and "plain training steps" in out and "aten::" in out
    with pytest.raises(SystemExit):
        profile_main(["--syn-steps", "0"])
