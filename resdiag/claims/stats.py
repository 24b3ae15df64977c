"""The statistics every verdict goes through: seeds, spread, a resolved difference, chance level.

A claim is a statement about the sign of a difference (deeper plain nets train *worse*; identity
shortcuts reach *lower* error). With a few seeds, a difference is only evidence when it stands
clear of the seed-to-seed spread, so every comparison here answers "lower", "higher", "tie" (not
resolved) or "unknown" (not enough seeds, or a number that is not finite), and a claim is
"inconclusive" unless its comparisons are resolved (docs/claims.md, "How a verdict is reached").
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Order = Literal["lower", "higher", "tie", "unknown"]

MIN_SEEDS = 2  # a spread needs two values; every budget runs 3 seeds per training claim
# A difference of means is resolved when it exceeds MARGIN standard errors of the difference
# (Welch: se = sqrt(s_a^2/n_a + s_b^2/n_b), s the sample std over seeds). With 3 seeds a side this is
# Welch's t > 2: a two-sided p of about 0.1 at ~4 degrees of freedom: a screen, not a proof.
MARGIN = 2.0
# A classifier is "at chance" when its error is within CHANCE_SES binomial standard errors of
# 1 - 1/classes, the error of guessing, on the n samples it was scored on.
CHANCE_SES = 3.0


@dataclass(frozen=True)
class Sample:
    """One quantity over seeds."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def finite(self) -> bool:
        return self.n > 0 and all(math.isfinite(v) for v in self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values) if self.finite else math.nan

    @property
    def spread(self) -> float:
        """Sample standard deviation over seeds (n - 1); nan with fewer than two seeds."""
        return statistics.stdev(self.values) if self.finite and self.n >= 2 else math.nan

    def to_dict(self) -> dict:
        return {"per_seed": list(self.values), "mean": self.mean, "spread": self.spread}

    def text(self) -> str:
        """``mean ± spread`` with three significant digits."""
        if not self.finite:
            return "n/a"
        if self.n < 2:
            return f"{self.mean:.3g}"
        return f"{self.mean:.3g} ± {self.spread:.2g}"


def sample(values: Iterable[float]) -> Sample:
    return Sample(tuple(float(v) for v in values))


def compare(a: Sample, b: Sample, floor: float = 0.0) -> Order:
    """Whether ``a``'s mean is resolved lower or higher than ``b``'s: the difference must exceed both
    MARGIN standard errors of the difference and ``floor`` (the measurement's resolution, e.g. one
    test image); otherwise "tie". "unknown" with fewer than MIN_SEEDS seeds or non-finite values."""
    if not (a.finite and b.finite) or min(a.n, b.n) < MIN_SEEDS:
        return "unknown"
    d = a.mean - b.mean
    bar = max(MARGIN * math.sqrt(a.spread ** 2 / a.n + b.spread ** 2 / b.n), floor)
    if d < -bar:
        return "lower"
    if d > bar:
        return "higher"
    return "tie"


def chance_error(classes: int) -> float:
    return 1.0 - 1.0 / classes


def at_chance(err: Sample, classes: int, n_scored: int) -> bool:
    """Mean error within CHANCE_SES binomial standard errors of guessing (or above it)."""
    p = chance_error(classes)
    return err.finite and err.mean >= p - CHANCE_SES * math.sqrt(p * (1 - p) / n_scored)


def combine(orders: Iterable[Order], expected: Order = "lower") -> tuple[str, str]:
    """A verdict from comparisons that the claim says all go the ``expected`` way, and why.

    inconclusive   some comparison is unknown, or none is resolved
    not supported  some comparison is resolved the other way
    supported      every comparison is resolved the expected way
    mixed          some are resolved the expected way, the rest are ties
    """
    orders = list(orders)
    if not orders or "unknown" in orders:
        return "inconclusive", "not enough seeds or a number that is not finite"
    against = sum(o not in (expected, "tie") for o in orders)
    towards = sum(o == expected for o in orders)
    if against:
        return "not supported", f"{against} of {len(orders)} comparisons resolved against the claim"
    if towards == len(orders):
        return "supported", f"all {len(orders)} comparisons resolved in the claim's direction"
    if towards:
        return "mixed", f"{towards} of {len(orders)} comparisons resolved in the claim's direction, the rest ties"
    return "inconclusive", f"no difference resolved beyond {MARGIN:g} standard errors of the seed spread"
