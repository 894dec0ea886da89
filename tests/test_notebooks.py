"""Every notebook executes top to bottom at profile=smoke on a fresh kernel, computing from scratch."""
from __future__ import annotations

import json
import os

import pytest

from selmatch.book import QUICKSTART, ROOT, execute, notebook_sources

NOTEBOOKS = [p.stem for p in notebook_sources()]
NEEDS_DATA = {"06_tinyimagenet": "tinyimagenet_c10_train.npz"}


def test_every_analysis_has_a_notebook_with_parameters():
    assert NOTEBOOKS[:7] == ["00_quickstart", "01_scores", "02_sliding_window", "03_coverage", "04_ablations",
                             "05_main_results", "06_tinyimagenet"]
    for name in NOTEBOOKS:
        text = (ROOT / "notebooks" / f"{name}.md").read_text()
        assert ":tags: [parameters]" in text and "kernelspec:" in text, name
        if name != QUICKSTART:
            assert 'profile = "smoke"' in text and "device =" in text and "seed =" in text, name


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes_at_smoke(name, tmp_path, monkeypatch, shared_cache):
    if name != QUICKSTART:
        data = os.environ.get("SELMATCH_DATA_SHARED")
        if not data:
            pytest.skip("needs the shared offline data (SELMATCH_DATA)")
        monkeypatch.setenv("SELMATCH_DATA", data)
        monkeypatch.setenv("SELMATCH_CACHE", str(shared_cache))
        if name in NEEDS_DATA and not os.path.exists(os.path.join(data, NEEDS_DATA[name])):
            pytest.skip(f"needs {NEEDS_DATA[name]} in SELMATCH_DATA")
    monkeypatch.setenv("SELMATCH_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SELMATCH_RUNS", str(tmp_path / "runs"))
    out = tmp_path / f"{name}.ipynb"
    row = execute(ROOT / "notebooks" / f"{name}.md", out, {} if name == QUICKSTART else {"profile": "smoke"})
    assert row["error"] is None, row["error"]
    nb = json.loads(out.read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) or "text/markdown" in o.get("data", {}) for o in outputs)
    if name != QUICKSTART:
        assert row["computed"] > 0   # computed from scratch, not read from a committed cache


def test_profile_parameters_name_real_parameters():
    """The per-profile parameters the book runner injects exist in each notebook's parameters cell."""
    import re

    from selmatch.book import PROFILE_PARAMETERS
    from selmatch.profiles import PROFILES

    for profile, by_notebook in PROFILE_PARAMETERS.items():
        assert profile in PROFILES
        for name, params in by_notebook.items():
            text = (ROOT / "notebooks" / f"{name}.md").read_text()
            cell = text.split(":tags: [parameters]", 1)[1].split("```", 1)[0]
            defined = set(re.findall(r"^(\w+)\s*=", cell, re.M))
            assert set(params) <= defined, (name, set(params) - defined)


@pytest.mark.parametrize("profile", ["smoke", "cpu"])
def test_committed_results_rebuild_the_book_offline(profile, tmp_path, monkeypatch):
    """A fresh clone builds the book from results/<profile> with no data: every analysis notebook reads its
    results from the committed cache and computes nothing (catches config changes that orphan them)."""
    import shutil

    from selmatch.book import PROFILE_PARAMETERS

    if not (ROOT / "results" / profile).exists():
        pytest.skip(f"no committed {profile} results")
    shutil.copytree(ROOT / "results", tmp_path / "results")
    monkeypatch.setenv("SELMATCH_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SELMATCH_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("SELMATCH_OFFLINE", "1")
    monkeypatch.delenv("SELMATCH_DATA", raising=False)
    for name in NOTEBOOKS:
        if name == QUICKSTART:
            continue
        params = {"profile": profile, **PROFILE_PARAMETERS.get(profile, {}).get(name, {})}
        row = execute(ROOT / "notebooks" / f"{name}.md", tmp_path / f"{name}.ipynb", params)
        assert row["error"] is None and row["computed"] == 0, (name, row)


def test_prune_removes_only_results_no_notebook_read(tmp_path, capsys):
    from selmatch.book import prune

    (tmp_path / "notebooks").mkdir()
    for n in ("00_quickstart", "01_a", "02_b"):
        (tmp_path / "notebooks" / f"{n}.md").write_text("")
    res = tmp_path / "results" / "p"
    res.mkdir(parents=True)
    for stem in ("window-aaa", "window-bbb", "selmatch-ccc", "our_scores-ddd"):
        (res / f"{stem}.json").write_text("{}")
    (res / "window-bbb.npz").write_bytes(b"")
    row = {"parameters": {"profile": "p"}, "error": None}
    status = tmp_path / "book" / "status.json"
    status.parent.mkdir()
    status.write_text(json.dumps([{**row, "notebook": "01_a", "keys": ["window-aaa"]}]))
    assert prune("p", True, tmp_path) == 2                     # 02_b has not run: nothing is touched
    assert "02_b" in capsys.readouterr().err and len(list(res.iterdir())) == 5
    status.write_text(json.dumps([{**row, "notebook": "01_a", "keys": ["window-aaa"]},
                                  {**row, "notebook": "02_b", "keys": ["selmatch-ccc"]}]))
    assert prune("p", False, tmp_path) == 0 and len(list(res.iterdir())) == 5   # listing only
    assert prune("p", True, tmp_path) == 0
    assert sorted(f.name for f in res.iterdir()) == ["our_scores-ddd.json", "selmatch-ccc.json", "window-aaa.json"]


def test_from_scratch_time_charges_a_shared_result_once():
    from selmatch.book import first_compute_seconds

    rows = [{"key_seconds": {"window-a": 60.0, "random-b": 30.0}},
            {"key_seconds": {"window-a": 60.0, "selmatch-c": 300.0}},
            {"key_seconds": {}}]
    assert first_compute_seconds(rows) == [90.0, 300.0, 0.0]
