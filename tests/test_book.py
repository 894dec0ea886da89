"""selmatch.companion.book: the notebook runner's bookkeeping (pruning, the status page's cost columns)."""
from __future__ import annotations

import json


def test_prune_removes_only_results_no_notebook_read(tmp_path, capsys):
    from selmatch.companion.book import prune

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
    from selmatch.companion.status import first_compute_seconds

    rows = [{"key_seconds": {"window-a": 60.0, "random-b": 30.0}},
            {"key_seconds": {"window-a": 60.0, "selmatch-c": 300.0}},
            {"key_seconds": {}}]
    assert first_compute_seconds(rows) == [90.0, 300.0, 0.0]


def test_a_long_page_reports_each_result_it_computes_as_it_lands(tmp_path):
    """The book runner prints one line per computed result while the page runs (not per result read)."""
    import threading
    import time

    from selmatch.companion.book import _report_computed

    log = tmp_path / "cache.log"
    lines, done = [], threading.Event()
    watcher = threading.Thread(target=_report_computed, args=(log, done, time.perf_counter(), lines.append, 0.05))
    watcher.start()
    log.write_text(json.dumps({"name": "window_eval", "key": "abc", "seconds": 90.0, "cached": False}) + "\n"
                   + json.dumps({"name": "random_eval", "key": "def", "seconds": 5.0, "cached": True}) + "\n")
    time.sleep(0.3)
    assert len(lines) == 1 and "computed window_eval-abc (1.5 min)" in lines[0]
    with log.open("a") as f:
        f.write(json.dumps({"name": "selmatch", "key": "123", "seconds": 30.0, "cached": False}) + "\n{\"name\": ")
    done.set()
    watcher.join(2)
    assert not watcher.is_alive() and len(lines) == 2 and "selmatch-123 (0.5 min)" in lines[1]


def test_the_status_page_names_the_cpus_its_results_were_computed_on(tmp_path, monkeypatch):
    import json

    monkeypatch.delenv("SELMATCH_RESULTS", raising=False)
    from selmatch.companion.status import machines

    folder = tmp_path / "results" / "cpu"
    folder.mkdir(parents=True)
    for key, cpu in (("a-1", "AMD EPYC, 2 cores"), ("b-2", "AMD EPYC, 2 cores"), ("c-3", None)):
        prov = {"device": "cpu", **({"cpu": cpu} if cpu else {})}
        (folder / f"{key}.json").write_text(json.dumps({"key": key, "provenance": prov}))
    rows = [{"parameters": {"profile": "cpu"}, "keys": ["a-1", "c-3"]}, {"parameters": {"profile": "cpu"}, "keys": ["b-2", "a-1"]}]
    text = machines(rows, tmp_path)
    assert text.startswith("AMD EPYC, 2 cores (2); 1 results made before the CPU model was recorded")   # a-1 once
    assert machines([], tmp_path) == "no result was read."
