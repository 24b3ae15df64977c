"""Baseline tolerances: ``rel:5%``, ``rel:0.05`` or ``abs:0.05``, in the spirit of pytest-benchmark's
``--benchmark-compare-fail=mean:5%``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerance:
    kind: str  # "rel": |new - old| <= value * |old|;  "abs": |new - old| <= value
    value: float

    def allows(self, old: float, new: float) -> bool:
        """Within tolerance; two NaNs, or the same infinity, count as equal."""
        if math.isnan(old) or math.isnan(new):
            return math.isnan(old) and math.isnan(new)
        if math.isinf(old) or math.isinf(new):
            return old == new
        room = self.value * abs(old) if self.kind == "rel" else self.value
        # A hair of slack so that 2.0 -> 2.2 is within rel:10% despite binary floating point.
        return abs(new - old) <= room + 1e-12 * max(abs(old), abs(new))

    def describe(self) -> str:
        return f"{self.value * 100:g}%" if self.kind == "rel" else f"{self.value:g}"

    def text(self) -> str:
        return f"{self.kind}:{self.describe()}"


def parse_tolerance(text: str) -> Tolerance:
    """``rel:5%`` | ``rel:0.05`` | ``abs:0.05``; ValueError with the accepted forms otherwise."""
    kind, sep, arg = text.strip().partition(":")
    kind, arg = kind.strip().lower(), arg.strip()
    percent = arg.endswith("%")
    try:
        value = float(arg[:-1] if percent else arg) if sep else math.nan
    except ValueError:
        value = math.nan
    if kind not in ("rel", "abs") or not math.isfinite(value) or value < 0 or (percent and kind == "abs"):
        raise ValueError(f"malformed tolerance {text!r}: use rel:PERCENT% (rel:5%), rel:FRACTION "
                         "(rel:0.05) or abs:AMOUNT (abs:0.05), each >= 0")
    return Tolerance(kind, value / 100 if percent else value)
