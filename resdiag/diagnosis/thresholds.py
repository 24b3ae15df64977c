"""Default thresholds of the verdict rules: plain data, importable without torch or numpy."""

from __future__ import annotations

from dataclasses import dataclass

from resdiag.thresholds_schema import check_thresholds


@dataclass(frozen=True)
class GradThresholds:
    at_vanish_ratio: float = 1e-3
    at_vanish_first: float = 1e-4
    at_explode_ratio: float = 70.0
    # Four orders of magnitude end to end. docs/calibration.md: every BN ResNet from 20 to 1202
    # layers stays below 3.2e3 at initialisation; plain-56 with BN reaches 1.7e4, plain-1202
    # without BN 1e-12.
    vanish_ratio: float = 1e-4
    explode_ratio: float = 1e4

    def __post_init__(self) -> None:  # finite and in range, or ResdiagError (resdiag/thresholds_schema.py)
        check_thresholds(self)


@dataclass(frozen=True)
class RankThresholds:
    # docs/calibration.md has the measurements behind these defaults.
    # Healthy residual nets keep >= 0.85 of x_0's normalised erank at every measured depth; deep
    # plain nets keep <= 0.09 (docs/calibration.md).
    feature_retention: float = 0.5  # collapse when erank_ratio(x_L) / erank_ratio(x_0) is below
    rank1_distance: float = 0.1  # collapse when ||X_L - X_1|| / ||X_L|| is below (healthy: >= 0.5)
    # Not calibrated on trained nets (no data set here); at initialisation every layer is >= 0.79.
    weight_erank_ratio: float = 0.1  # collapse when some layer's weight erank ratio is below

    def __post_init__(self) -> None:  # finite and in range, or ResdiagError (resdiag/thresholds_schema.py)
        check_thresholds(self)
