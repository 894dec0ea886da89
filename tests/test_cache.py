"""selmatch.companion.cache: load-or-compute keyed by a hash of the config, with arrays and provenance."""
from __future__ import annotations

import json

import numpy as np
import pytest

from selmatch.artifacts import config_key
from selmatch.companion.cache import cached


def test_computes_once_then_reads(tmp_path, monkeypatch):
    calls = []

    def compute():
        calls.append(1)
        return {"mean": 1.5, "arrays": {"x": np.arange(3)}}

    first = cached("unit", {"a": 1}, compute, tmp_path, provenance=lambda: {"device": "cpu"})
    again = cached("unit", {"a": 1}, compute, tmp_path)
    assert len(calls) == 1 and not first["cached"] and again["cached"]
    assert again["result"]["mean"] == 1.5 and again["result"]["arrays"]["x"].tolist() == [0, 1, 2]
    record = json.loads((tmp_path / f"unit-{config_key({'a': 1})}.json").read_text())
    assert record["config"] == {"a": 1} and record["provenance"] == {"device": "cpu"} and "version" in record
    cached("unit", {"a": 2}, compute, tmp_path)                    # another config: computed
    monkeypatch.setenv("SELMATCH_RECOMPUTE", "1")
    cached("unit", {"a": 1}, compute, tmp_path)                    # forced
    assert len(calls) == 3
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".json", ".npz", ".npz"]


def test_an_altered_result_is_refused(tmp_path):
    cached("unit", {"a": 1}, lambda: {"mean": 1.5, "arrays": {"x": np.arange(3)}}, tmp_path)
    path = tmp_path / f"unit-{config_key({'a': 1})}.json"
    record = json.loads(path.read_text())
    record["result"]["mean"] = 9.9                         # a hand-edited number
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match="was altered after it was written"):
        cached("unit", {"a": 1}, lambda: {}, tmp_path)
    record["result"]["mean"], record["config"] = 1.5, {"a": 2}
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"holds a result for another configuration \(a: 2 -> 1\)"):
        cached("unit", {"a": 1}, lambda: {}, tmp_path)


def test_every_committed_result_carries_a_valid_checksum():
    from pathlib import Path

    from selmatch.companion.cache import checksum

    root = Path(__file__).resolve().parents[1] / "results"
    files = sorted(root.glob("*/*.json"))
    assert files
    for f in files:
        record = json.loads(f.read_text())
        arrays = {}
        if f.with_suffix(".npz").exists():
            with np.load(f.with_suffix(".npz")) as z:
                arrays = {k: z[k] for k in z.files}
        assert record.get("checksum") == checksum(record, arrays), f


def test_every_committed_result_was_made_by_committed_code():
    """A result's version names a commit of this repository's history and never an uncommitted tree
    (``.dirty``): the code that made each number in the book can be checked out."""
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    shallow = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=repo, capture_output=True, text=True)
    if shallow.returncode or shallow.stdout.strip() != "false":
        pytest.skip("not a git checkout with its whole history")
    versions = {}
    for f in sorted((repo / "results").glob("*/*.json")):
        versions.setdefault(json.loads(f.read_text())["version"], f)
    assert versions
    for version, f in versions.items():
        assert "+" in version and not version.endswith(".dirty"), (version, f)
        commit = version.split("+")[1]
        known = subprocess.run(["git", "merge-base", "--is-ancestor", commit, "HEAD"], cwd=repo, capture_output=True)
        assert known.returncode == 0, f"{f}: version {version} is not a commit of this history"


def test_results_are_stamped_with_the_code_this_process_loaded(tmp_path, monkeypatch):
    """A commit made while a long run is going does not relabel the run's later results."""
    from selmatch.companion import cache

    loaded = cache.code_version()
    monkeypatch.setattr(cache, "_version_now", lambda: "0.0.0+moved-on")
    out = cache.cached("unit", {"a": 1}, lambda: {"x": 1}, tmp_path)
    assert out["version"] == loaded != "0.0.0+moved-on"


@pytest.mark.parametrize("damage, message", [
    (lambda r, p: {k: v for k, v in r.items() if k != "checksum"}, "has no checksum, so it cannot be trusted"),
    (lambda r, p: "[1, 2]", "is not a result record"),
    (lambda r, p: {k: v for k, v in r.items() if k != "result"}, "is not a result record"),
    (lambda r, p: None, "is not a readable result"),                       # empty file
    (lambda r, p: '{"config": {"a": 1}, "resu', "is not a readable result"),   # truncated
    (lambda r, p: p.with_suffix(".npz").write_bytes(b"PK\x03\x04 damaged") and r, "npz is damaged"),
])
def test_a_result_without_its_checksum_or_damaged_is_one_line_naming_the_file(tmp_path, damage, message):
    """Only a result with its checksum is trusted; every kind of damage is a one-line error that names the file
    (and what to do), never a raw JSONDecodeError, KeyError or BadZipFile."""
    from selmatch.companion.cache import DamagedResult

    cached("unit", {"a": 1}, lambda: {"mean": 1.5, "arrays": {"x": np.arange(3)}}, tmp_path)
    path = tmp_path / f"unit-{config_key({'a': 1})}.json"
    record = json.loads(path.read_text())
    new = damage(record, path)
    path.write_text("" if new is None else new if isinstance(new, str) else json.dumps(new))
    with pytest.raises(DamagedResult, match=message) as err:
        cached("unit", {"a": 1}, lambda: {"mean": 77.7}, tmp_path)
    assert path.stem in str(err.value) and len(str(err.value).splitlines()) == 1
    assert "move it aside" in str(err.value)
