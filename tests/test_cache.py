"""selmatch.companion.cache: load-or-compute keyed by a hash of the config, with arrays and provenance."""
from __future__ import annotations

import json

import numpy as np

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
