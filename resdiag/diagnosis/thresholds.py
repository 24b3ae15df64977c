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


@dataclass(frozen=True)
class RankThresholds:
    # docs/calibration.md has the measurements behind these defaults.
    feature_retention: float = 0.25  # collapse when erank_ratio(x_L) / erank_ratio(x_0) is below
    rank1_distance: float = 0.05  # collapse when ||X_L - X_1|| / ||X_L|| is below
    weight_erank_ratio: float = 0.1  # collapse when some layer's weight erank ratio is below
