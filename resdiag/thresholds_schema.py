"""The admissible range of every verdict threshold and every ``check`` gate limit, declared once.

A threshold outside its range does not fail loudly by itself: it switches its rule off. With
``feature_retention = nan`` every comparison ``r < nan`` is false and the collapse rule never fires;
with ``vanish_ratio = -1`` nothing is ever "vanishing"; with ``explode_ratio = inf`` nothing is ever
"exploding". So every threshold must be a finite number inside the range where its rule means what
docs/gradflow.md and docs/rank.md say it means (issue 10, item 4), and a value outside is a user error.

The ranges, and why:

- ``FRACTION`` (0, 1]: a "vanishing" or "collapse" threshold on a ratio whose healthy value is about 1
  (a ratio of gradient norms, an effective-rank ratio, a distance from rank one relative to the
  norm). Above 1 it would call a network whose ratio stays at 1 vanishing or collapsed; at 0 or below
  it can never fire.
- ``GROWTH`` [1, inf): an "exploding" threshold on a ratio of gradient norms; below 1 it would call a
  shrinking gradient exploding.
- ``POSITIVE`` (0, inf): a gradient norm, or a gate on a ratio of norms (which is >= 0; a limit at
  or below 0 either always passes or always fails).
- ``FINITE``: a gate on a slope (``log_growth_per_block`` is negative when the gradient shrinks).

Plain Python (no pydantic, torch or numpy): ``resdiag.diagnosis.thresholds`` calls ``check_thresholds``
from each dataclass's ``__post_init__``, so the CLI, the API and ``check`` refuse the same values.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from resdiag.errors import ResdiagError


@dataclass(frozen=True)
class Range:
    """An interval of finite numbers; ``low``/``high`` may be infinite (then open)."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = True
    high_open: bool = True

    def contains(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def text(self) -> str:
        """``a finite number in (0, 1]``, ``a finite number > 0``, ``a finite number ≥ 1``."""
        lo, hi = math.isfinite(self.low), math.isfinite(self.high)
        if lo and hi:
            return (f"a finite number in {'(' if self.low_open else '['}{self.low:g}, "
                    f"{self.high:g}{')' if self.high_open else ']'}")
        if lo:
            return f"a finite number {'>' if self.low_open else '≥'} {self.low:g}"
        if hi:
            return f"a finite number {'<' if self.high_open else '≤'} {self.high:g}"
        return "a finite number"

    def problem(self, value: Any) -> str | None:
        """None when ``value`` is a number inside the range, else what is wrong, for a message."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be {self.text()}, got {value!r}"
        if not self.contains(float(value)):
            return f"must be {self.text()}, got {float(value):g}"
        return None


FRACTION = Range(0.0, 1.0, low_open=True, high_open=False)
GROWTH = Range(1.0, math.inf, low_open=False)
POSITIVE = Range(0.0, math.inf)
FINITE = Range()


@dataclass(frozen=True)
class Rule:
    range: Range
    option: str | None  # the command-line option that sets it, if any (named in the error)


# Every field of the threshold dataclasses in resdiag/diagnosis/thresholds.py. A field without a rule
# here is refused at construction (tests/check/test_thresholds_validation.py lists them all).
THRESHOLD_RULES: dict[str, dict[str, Rule]] = {
    "GradThresholds": {
        "at_vanish_ratio": Rule(FRACTION, None),
        "at_vanish_first": Rule(POSITIVE, None),
        "at_explode_ratio": Rule(GROWTH, None),
        "vanish_ratio": Rule(FRACTION, "--vanish-ratio"),
        "explode_ratio": Rule(GROWTH, "--explode-ratio"),
        "gain_max": Rule(GROWTH, None),  # a gain below 1 would call a variance-preserving layer exploding
    },
    "RankThresholds": {
        "feature_retention": Rule(FRACTION, "--min-retention"),
        "rank1_distance": Rule(FRACTION, "--min-rank1-distance"),
        "weight_erank_ratio": Rule(FRACTION, "--min-weight-erank"),
        "token_res": Rule(FRACTION, None),
        "token_retention": Rule(FRACTION, None),
    },
}

# (lower, upper) pairs of one class that must satisfy lower < upper.
ORDERED: dict[str, tuple[tuple[str, str], ...]] = {
    "GradThresholds": (("at_vanish_ratio", "at_explode_ratio"), ("vanish_ratio", "explode_ratio")),
}

# The range of a ``check`` gate limit, by the metric it bounds (resdiag/check/metrics.py). A limit
# outside it either always passes or always fails, so it is refused (the way to turn a gate off is
# ``false``).
METRIC_RANGES: dict[str, Range] = {
    "boundary_ratio": POSITIVE,
    "log_growth_per_block": FINITE,
    "weight_first_last_ratio": POSITIVE,
    "feature_erank_retention": POSITIVE,  # erank(x_L)/erank(x_0) may exceed 1: features can gain rank
    "feature_erank_ratio_last": FRACTION,
    "rank1_distance_last": FRACTION,
    "weight_erank_ratio_min": FRACTION,
    "weight_erank_ratio_median": FRACTION,
}


# Command-line numbers that are not verdict thresholds but switch a measurement off outside their
# range: the numerical rank counts singular values s > max(rtol * s_max, atol) (docs/rank.md), so
# rtol >= 1 or an infinite atol count none.
OPTION_RANGES: dict[str, Range] = {
    "--rtol": Range(0.0, 1.0, low_open=False, high_open=True),
    "--atol": Range(0.0, math.inf, low_open=False),
}


def check_option(option: str, value: float | None) -> None:
    """Raise ResdiagError when a command-line number of ``OPTION_RANGES`` is set outside its range."""
    problem = None if value is None else OPTION_RANGES[option].problem(value)
    if problem:
        raise ResdiagError(f"{option} {problem}")


def _label(cls: str, field: str, rule: Rule) -> str:
    return f"{rule.option} ({cls}.{field})" if rule.option else f"threshold {cls}.{field}"


def check_thresholds(thresholds: Any) -> None:
    """Raise ResdiagError, naming the option and the field, for the first threshold out of its range."""
    cls = type(thresholds).__name__
    rules = THRESHOLD_RULES.get(cls)
    if rules is None:
        raise TypeError(f"no threshold ranges declared for {cls} in resdiag/thresholds_schema.py")
    for f in dataclasses.fields(thresholds):
        rule = rules.get(f.name)
        if rule is None:
            raise TypeError(f"no range declared for {cls}.{f.name} in resdiag/thresholds_schema.py")
        problem = rule.range.problem(getattr(thresholds, f.name))
        if problem:
            raise ResdiagError(f"{_label(cls, f.name, rule)} {problem}")
    for low, high in ORDERED.get(cls, ()):
        a, b = getattr(thresholds, low), getattr(thresholds, high)
        if not a < b:
            raise ResdiagError(f"thresholds must satisfy {_label(cls, low, rules[low])} < "
                               f"{_label(cls, high, rules[high])}, got {a:g} and {b:g}")
