"""The book's one verdict rule: a 95 % interval on a paired difference.

Every method evaluated at one ratio trains its networks with the same evaluation seeds (``seed``,
``seed + 1``, ...: the same initial weights, minibatch order and augmentation draws), so run ``i`` of
method A and run ``i`` of method B form a pair. The difference ``A - B`` is judged by the Student-t
interval of its mean over pairs::

    diff = mean(a_i - b_i),  half-width = t(0.975, n - 1) * sd(a_i - b_i) / sqrt(n)

* **A above B** when the whole interval is above 0, **A below B** when it is below 0,
* **no difference detected** otherwise (the interval contains 0: the runs cannot tell them apart).

Pairing removes the run-to-run variation the two methods share (the same seeds give correlated
accuracies), so the interval is narrower than comparing two means with their own spreads.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass

from scipy.stats import t as student_t

LEVEL = 0.95
RULE = ("A is *above* (*below*) B when the 95 % Student-t interval of the mean paired difference A − B over "
        "runs with the same evaluation seeds lies entirely above (below) 0; otherwise *no difference is detected*.")


def signed(value: float) -> str:
    """``+1.2``; a value that one decimal would show as ``±0.0`` gets the digits its sign needs (``+0.03``), so an
    interval that excludes zero never prints an end at zero. Float noise (under 1e-9) is zero."""
    value = 0.0 if abs(value) < 1e-9 else value
    text = f"{value:+.1f}"
    if value != 0 and float(text) == 0:
        text = f"{value:+.2g}" if abs(value) >= 1e-4 else f"{value:+.1e}"
    return text


@dataclass(frozen=True)
class Paired:
    """The paired difference ``a - b`` over ``n`` runs and its verdict."""

    diff: float
    low: float
    high: float
    n: int
    verdict: str          # "above" | "below" | "no difference"
    p: float = float("nan")   # two-sided p-value of the paired t-test (for a family-wise correction)

    def __str__(self) -> str:
        return f"{signed(self.diff)} [{signed(self.low)}, {signed(self.high)}]"

    def as_dict(self) -> dict:
        return asdict(self)


def interval(values: list[float], level: float = LEVEL) -> tuple[float, float, float]:
    """Mean and the two ends of its Student-t interval (``values`` need at least two entries)."""
    n = len(values)
    if n < 2:
        raise ValueError(f"an interval needs at least 2 values, got {n}")
    mean = statistics.fmean(values)
    half = student_t.ppf(0.5 + level / 2, n - 1) * statistics.stdev(values) / math.sqrt(n)
    return mean, mean - half, mean + half


def paired(a: list[float] | dict, b: list[float] | dict, level: float = LEVEL) -> Paired:
    """Compare two evaluations run by run. ``a``/``b`` are per-run accuracies or result dicts with ``runs``."""
    a = list(a["runs"] if isinstance(a, dict) else a)
    b = list(b["runs"] if isinstance(b, dict) else b)
    if len(a) != len(b):
        raise ValueError(f"paired runs must match one to one: a has {len(a)} runs, b has {len(b)}")
    d = [x - y for x, y in zip(a, b)]
    mean, low, high = interval(d, level)
    verdict = "above" if low > 0 else "below" if high < 0 else "no difference"
    sd = statistics.stdev(d)
    p = 1.0 if sd == 0 and mean == 0 else 0.0 if sd == 0 else \
        float(2 * student_t.sf(abs(mean) / (sd / math.sqrt(len(d))), len(d) - 1))
    return Paired(mean, low, high, len(a), verdict, p)


HOLM = ("A claim made of several comparisons is judged family-wise (Holm's step-down correction at 5 % over the "
        "claim's comparisons): it *holds* when every comparison is significant in the claimed direction, *does not "
        "hold* when any is significant against it, and is *not decided* otherwise. A claim without an interval "
        "(a chosen value, one coverage measurement) reads *direction only*, never *holds*.")


def holm(pairs: list[Paired], level: float = 1 - LEVEL) -> list[str]:
    """Each comparison's verdict after Holm's step-down correction over ``pairs`` (the family): 'above' or
    'below' only where its adjusted p-value is under ``level``."""
    out = ["no difference"] * len(pairs)
    m = len(pairs)
    for rank, i in enumerate(sorted(range(m), key=lambda i: pairs[i].p)):
        if not pairs[i].p * (m - rank) < level:
            break
        out[i] = "above" if pairs[i].diff > 0 else "below"
    return out


def phrase(p: Paired, a: str, b: str) -> str:
    """One sentence fragment for prose: 'A is above B by +2.1 points [+1.0, +3.2], n = 5'."""
    what = {"above": f"{a} is above {b}", "below": f"{a} is below {b}",
            "no difference": f"no difference between {a} and {b} is detected"}[p.verdict]
    return f"{what} ({signed(p.diff)} points, 95 % interval [{signed(p.low)}, {signed(p.high)}], n = {p.n} paired runs)"
