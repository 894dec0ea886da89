"""The in-class exercises (selmatch.companion.lesson): every page with exercises has one, prints its command and
shows its record; the record holds each to a decided verdict inside a class's time.

``test_every_in_class_exercise_runs_cold_inside_its_printed_time`` runs each exercise as printed from a cold
cache (minutes each, about half an hour in all): it runs only with ``SELMATCH_LESSON=1`` (``make test-lesson``),
never in CI.
"""
from __future__ import annotations

import json
import os
import re

import pytest

from selmatch.companion import lesson
from selmatch.companion.book import ROOT


def _pages_with_exercises() -> list[str]:
    return sorted(p.stem for p in (ROOT / "notebooks").glob("*.md") if "\n## Exercises" in p.read_text())


def test_every_page_with_exercises_has_an_in_class_one_whose_command_it_prints():
    assert _pages_with_exercises() == sorted(lesson.EXERCISES)
    for page, ex in lesson.EXERCISES.items():
        text = (ROOT / "notebooks" / f"{page}.md").read_text()
        section = text.split("\n## Exercises", 1)[1]
        assert f'lesson.exercise("{page}")' in section, page
        assert re.search(rf"```bash\n{re.escape(ex.command)}\n```", section), page
        numbered = re.findall(r"^\d+\. (.*)$", section.split("\n## ", 1)[0], re.M)
        assert numbered and all(n.startswith("**Homework.**") for n in numbered), page   # each marked
        assert ex.question(ex.grid()).strip(), page


def test_the_committed_record_decides_every_exercise_inside_a_class():
    record = json.loads(lesson.RECORD.read_text())
    assert sorted(record) == sorted(lesson.EXERCISES)
    for page, rec in record.items():
        assert rec["verdict"] in ("above", "below"), (page, rec)
        assert rec["seconds"] <= 60 * lesson.limit_minutes(rec["seconds"]) <= 60 * lesson.LIMIT_MINUTES, (page, rec)
        assert rec["n"] >= 6 and "cores" in rec["machine"], (page, rec)


def test_the_printed_time_is_the_cold_measurement_with_a_margin_and_never_above_a_class():
    assert lesson.limit_minutes(100) == 3 and lesson.limit_minutes(20) == 1 and lesson.limit_minutes(390) == 10
    assert lesson.limit_minutes(900) == lesson.LIMIT_MINUTES     # too slow: it cannot promise more than the class


def test_a_rank_correlation_is_decided_by_its_interval():
    tiny = lesson._correlation(0.01, 50)
    assert tiny.verdict == "no difference" and tiny.low < 0 < tiny.high
    big = lesson._correlation(0.3, 50_000)
    assert big.verdict == "above" and 0.29 < big.low < 0.3 < big.high < 0.31
    assert lesson._correlation(-0.3, 200).verdict == "below"


def test_the_page_shows_the_question_the_time_and_the_folded_answer(tmp_path, monkeypatch):
    from selmatch.companion import report

    shown = []
    monkeypatch.setattr(report, "show", shown.append)
    rec = {"seconds": 130.0, "compared": "X − Y", "difference": "-12.3 [-14.0, -10.6]", "verdict": "below",
           "n": 6, "machine": "Some CPU, 2 cores", "date": "2026-12-06"}
    path = tmp_path / "lesson.json"
    path.write_text(json.dumps({"02_sliding_window": rec}))
    lesson.exercise("02_sliding_window", path)
    text = shown[-1]
    assert "at most 4 min" in text and "IPC 50" in text and "<details>" in text and "**below**" in text
    assert "2.2 min" in text and "Some CPU, 2 cores" in text and "6 evaluation runs" in text
    lesson.exercise("09_crossover", path)                  # not measured: says so, promises no time
    assert "has not been measured" in shown[-1] and "at most" not in shown[-1]


@pytest.mark.skipif(os.environ.get("SELMATCH_LESSON") != "1",
                    reason="runs every in-class exercise cold (about half an hour): make test-lesson")
@pytest.mark.parametrize("page", sorted(lesson.EXERCISES))
def test_every_in_class_exercise_runs_cold_inside_its_printed_time(page, tmp_path):
    printed = json.loads(lesson.RECORD.read_text())[page]
    rec = lesson.run_cold(page, tmp_path)
    assert rec["seconds"] <= 60 * lesson.limit_minutes(printed["seconds"]), (page, rec, printed)
    assert rec["verdict"] == printed["verdict"] != "no difference", (page, rec, printed)
