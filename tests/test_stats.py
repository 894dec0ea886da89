"""The verdict rule: a Student-t interval on paired run differences."""
import math
import statistics

import pytest

from selmatch.companion.stats import interval, paired, phrase


def test_interval_matches_the_t_formula():
    vals = [1.0, 2.0, 4.0, 3.0, 5.0]
    mean, low, high = interval(vals)
    half = 2.776445105 * statistics.stdev(vals) / math.sqrt(5)     # t(0.975, 4) from a printed table
    assert mean == pytest.approx(3.0)
    assert (low, high) == pytest.approx((3.0 - half, 3.0 + half), abs=1e-6)


def test_pairing_separates_what_overlapping_spreads_cannot():
    # seeds shift both methods alike: the spreads overlap, yet A is above B in every pair
    b = [50.0, 53.0, 47.0, 55.0, 49.0]
    a = [x + 1.0 + 0.1 * i for i, x in enumerate(b)]
    p = paired(a, b)
    assert p.verdict == "above" and p.low > 0 and p.n == 5
    assert paired(b, a).verdict == "below"
    assert "is above" in phrase(p, "A", "B")


def test_no_difference_when_the_interval_holds_zero():
    p = paired({"runs": [50.0, 52.0, 49.0]}, {"runs": [51.0, 50.0, 50.0]})
    assert p.low < 0 < p.high and p.verdict == "no difference"
    assert "no difference" in phrase(p, "A", "B")


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="a has 2 runs, b has 3"):
        paired([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="at least 2"):
        paired([1.0], [2.0])
