"""The in-class exercises: one per page, at profile ``lesson`` (minutes on a 2-core laptop, six runs per set),
each a question whose answer is one verdict of the page's own results.

Each exercise is the page's rerun at that profile, ``selmatch rerun PAGE --profile lesson``: it computes the
page's ``lesson`` grid (:data:`selmatch.settings.NOTEBOOK_GRIDS`) and renders the page, whose conclusions state
the answer. ``python -m selmatch.companion.lesson`` (``make lesson``) runs every exercise as printed from a cold
cache (a fresh folder for results and runs, and an empty decoded-data cache: only the data files are present),
times it, reads the answer from what it computed and writes the record to ``results/lesson.json``; each page
shows its exercise with that record (:func:`exercise`), and ``tests/test_lesson.py`` holds every exercise to its
printed time and to a decided verdict.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..device import cpu_name
from .stats import Paired, paired

PROFILE = "lesson"
RECORD = Path(__file__).resolve().parents[2] / "results" / "lesson.json"
LIMIT_MINUTES = 10          # a class's budget for one exercise, cold, on 2 cores


@dataclass(frozen=True)
class Exercise:
    """One in-class exercise: its page, the question (a function of the page's lesson grid) and its answer
    (the comparison that decides it, read from the page's results)."""

    page: str
    question: Callable[[dict], str]
    answer: Callable[[object, dict], tuple[str, Paired]]
    dataset: str = "cifar10"
    unit: str = " points"        # of the difference the answer states

    @property
    def command(self) -> str:
        return f"selmatch rerun {self.page} --profile {PROFILE}"

    def grid(self) -> dict:
        from ..settings import page_grid

        return page_grid(self.page, PROFILE)


def _correlation(r: float, n: int) -> Paired:
    """A rank correlation over ``n`` items with its 95 % interval (Fisher's z, standard error √(1.06/(n−3)),
    as for Spearman's ρ); its verdict says whether it is above or below zero."""
    z, se = math.atanh(max(min(r, 0.999999), -0.999999)), math.sqrt(1.06 / (n - 3))
    low, high = math.tanh(z - 1.96 * se), math.tanh(z + 1.96 * se)
    verdict = "above" if low > 0 else "below" if high < 0 else "no difference"
    return Paired(diff=r, low=low, high=high, n=n, verdict=verdict)


def _scores(ctx, grid):
    from .units import dataset, score_study

    res = score_study(ctx)["result"]
    i = res["names"].index("published cscore")
    n = len(dataset(ctx.dataset).y_train)
    return f"rank correlation of our forgetting counts with the published C-scores over {n:,} images", \
        _correlation(res["spearman"][0][i], n)


def _window(ctx, grid):
    from .pages.sliding_window import sliding_window
    from .units import best_on_val

    rows, _ = sliding_window(ctx, grid["ipcs"], grid["betas"], grid["code_betas"], log=lambda m: None)
    frac = [r for r in rows if r["start_mode"] == "fraction"]
    hardest, best = min(frac, key=lambda r: r["beta"]), best_on_val(frac)
    return f"the hardest window (β {hardest['beta']}) − the best (β {best['beta']}, on validation)", \
        paired(hardest, best)


def _hard_half(ctx, grid):
    from .pages.coverage import coverage

    rows, _ = coverage(ctx, grid["ipcs"], grid["alpha"], grid["betas"], grid["eval_at"])
    g = rows[0]["acc"]["MTT"]["groups"]
    return f"MTT's accuracy on the hard half − on the easy half of the test set, IPC {rows[0]['ipc']}", \
        paired(g["hard"], g["easy"])


def _alpha(ctx, grid):
    from .pages.ablations import ablations

    abl = ablations(ctx, grid["ipcs"], grid["alphas"], grid["betas"], grid["alpha_fixed"], grid["distill_budgets"])
    by = {r["alpha"]: r for r in abl["alpha_rows"] if r["ipc"] == grid["ipcs"][0]}
    return f"α 1 (every image distilled) − α 0 (the window alone), IPC {grid['ipcs'][0]}", paired(by[1.0], by[0.0])


def _main(ctx, grid, alphas_key="alphas", score="cscore"):
    from .pages.main_results import main_results

    ipc = grid["ipcs"][0]
    res = main_results(ctx, grid["ipcs"], grid["betas"], grid[alphas_key], score=score)[ipc]
    return f"SelMatch − random selection, IPC {ipc}", paired(res["SelMatch"], res["Random"])


def _crossover(ctx, grid):
    from .pages.crossover import crossover

    rows = crossover(ctx, grid["ipcs"], grid["betas"], grid["eval_at"])
    r = rows[0]
    mtt = r["MTT"]["final"] if "final" in r["MTT"] else r["MTT"]
    return f"MTT − its initialisation, the random subset, IPC {r['ipc']}", paired(mtt, r["Random"])


EXERCISES: dict[str, Exercise] = {e.page: e for e in [
    Exercise("01_scores", lambda g: (
        "Our forgetting counts come from one short training run of a small network. Do they rank the training "
        "images as the published C-scores do (a rank correlation above zero), and how strongly?"), _scores, unit=""),
    Exercise("02_sliding_window", lambda g: (
        f"At IPC {g['ipcs'][0]}, is the class's hardest window (β {min(g['betas'])}) a worse training set than "
        f"the best window of β ∈ {{{', '.join(map(str, g['betas']))}}}? By how much?"), _window),
    Exercise("03_coverage", lambda g: (
        f"The paper's mechanism is about hard examples. At IPC {g['ipcs'][0]}, is MTT's set less accurate on the "
        "hard half of the test set than on the easy half, run by run?"), _hard_half),
    Exercise("04_ablations", lambda g: (
        f"At IPC {g['ipcs'][0]}, does distilling every image of the window (α = 1) beat the window alone "
        "(α = 0)?"), _alpha),
    Exercise("05_main_results", lambda g: (
        f"At IPC {g['ipcs'][0]}, where distillation is at home, does SelMatch beat a random subset of the same "
        "size?"), _main),
    Exercise("06_tinyimagenet", lambda g: (
        f"On the 10-class TinyImageNet at IPC {g['ipcs'][0]}, does SelMatch beat a random subset of the same "
        "size?"), lambda ctx, g: _main(ctx, g, "alpha", "forgetting"), dataset="tinyimagenet-c10"),
    Exercise("09_crossover", lambda g: (
        f"At IPC {g['ipcs'][0]}, does MTT's distillation improve on the random subset it starts from?"),
        _crossover),
]}


def answer(page: str, folder: str | Path) -> tuple[str, Paired]:
    """The exercise's answer from the results a run of its command left in ``folder`` (read only: every
    result is in the folder's cache)."""
    from .units import Context

    ex = EXERCISES[page]
    folder = Path(folder)
    ctx = Context(profile=PROFILE, dataset=ex.dataset, results=str(folder / "results"), runs=str(folder / "runs"))
    return ex.answer(ctx, ex.grid())


def run_cold(page: str, folder: Path, log=print) -> dict:
    """Run the exercise's printed command into ``folder`` from a cold cache and time it; then read its answer."""
    ex = EXERCISES[page]
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SELMATCH_CACHE": str(folder / "cache")}     # no decoded data: only the data files
    argv = [sys.executable, "-m", "selmatch", *ex.command.split()[1:], "--into", str(folder / "run")]
    log(f"{page}: {ex.command} (cold, into {folder})")
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    what, p = answer(page, folder / "run")
    log(f"{page}: {seconds / 60:.1f} min; {what}: {p} ({p.verdict})")
    shown = str(p) if ex.unit else f"{p.diff:+.3f} [{p.low:+.3f}, {p.high:+.3f}]"     # a correlation: 3 places
    return {"seconds": round(seconds, 1), "compared": what, "difference": shown, "verdict": p.verdict,
            "n": p.n, "machine": cpu_name(), "date": time.strftime("%Y-%m-%d")}


def limit_minutes(seconds: float) -> int:
    """The time an exercise prints: its cold measurement with half again for a slower laptop, in whole minutes,
    never above the class's budget (an exercise that needs more is not an in-class exercise)."""
    return min(LIMIT_MINUTES, max(1, math.ceil(1.5 * seconds / 60)))


def exercise(page: str, record: Path = RECORD) -> None:
    """The page's in-class exercise: the question, its printed time (from the cold measurement) and, folded,
    the answer as measured."""
    from ..settings import get_profile
    from .report import show

    ex = EXERCISES[page]
    rec = json.loads(record.read_text()).get(page) if record.exists() else None
    how = (f"The command below reruns this page at profile `{PROFILE}` ({get_profile(PROFILE).runs} evaluation runs "
           f"per set, small networks, short training) into `rerun-{PROFILE}/`; the page's conclusions state the answer.")
    if rec is None:
        show(f"**In class.** {ex.question(ex.grid())} {how} Its time has not been measured yet "
             f"(`make lesson` measures it).")
        return
    show(f"**In class** (at most {limit_minutes(rec['seconds'])} min on a 2-core laptop with the data present). "
         f"{ex.question(ex.grid())} {how}\n\n"
         f"<details><summary>Measured answer</summary>\n\n{rec['compared']}: {rec['difference']}{ex.unit}, "
         f"n = {rec['n']} — **{rec['verdict']}**. The command took {rec['seconds'] / 60:.1f} min from a cold cache "
         f"(no results, experts, feature network or decoded data; the time includes starting the notebook, "
         f"decoding the data and rendering the page) on {rec['machine']}, {rec['date']}.\n\n</details>")


def main(argv: list[str] | None = None) -> int:
    """``python -m selmatch.companion.lesson [PAGE ...]``: run each in-class exercise cold, print its time and
    answer, and record them in ``results/lesson.json`` (``--record`` elsewhere)."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("pages", nargs="*", metavar="PAGE", help=f"pages (default all: {', '.join(EXERCISES)})")
    ap.add_argument("--record", default=str(RECORD), help="the JSON record to update (default results/lesson.json)")
    ap.add_argument("--keep", action="store_true", help="keep each run's folder (printed) instead of removing it")
    args = ap.parse_args(argv)
    unknown = [p for p in args.pages if p not in EXERCISES]
    if unknown:
        ap.error(f"pages={unknown} have no in-class exercise; valid: {', '.join(EXERCISES)}")
    record = Path(args.record)
    for page in args.pages or list(EXERCISES):
        folder = Path(tempfile.mkdtemp(prefix=f"lesson-{page}-"))
        rec = run_cold(page, folder)
        data = json.loads(record.read_text()) if record.exists() else {}
        data[page] = rec                       # written after each exercise: an interrupted run keeps the rest
        record.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
