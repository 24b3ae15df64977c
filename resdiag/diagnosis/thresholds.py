"""Default thresholds of the verdict rules: plain data, importable without torch or numpy."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GradThresholds:
    at_vanish_ratio: float = 1e-3
    at_vanish_first: float = 1e-4
    at_explode_ratio: float = 70.0
    # Three orders of magnitude end to end; docs/calibration.md has the measurements behind it.
    vanish_ratio: float = 1e-3
    explode_ratio: float = 1e3
