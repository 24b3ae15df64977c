"""Default thresholds of the verdict rules: plain data, importable without torch or numpy."""

from __future__ import annotations

from dataclasses import dataclass

from resdiag.thresholds_schema import check_thresholds


# The principle behind the end-to-end limits (docs/calibration.md, "The defaults, and why"): SGD
# applies one learning rate to every layer, so a layer's step scales with its gradient. Take the
# layer nearest the output at a healthy relative step, ||update|| / ||W|| ~ 1e-3 (the usual
# update-to-weight ratio; Karpathy, CS231n notes "Neural Networks Part 3"). A first block whose
# gradient is T times smaller takes relative steps 1e-3 * T: below float32's unit roundoff 2^-24
# they round away and the block does not learn (vanishing). A first block whose gradient is T times
# larger takes relative steps 1e-3 * T: at T = 1e3 each step is as large as the weights (exploding).
HEALTHY_UPDATE_RATIO = 1e-3
FLOAT32_UNIT_ROUNDOFF = 2.0**-24


@dataclass(frozen=True)
class GradThresholds:
    # AUTOTRAINER's published defaults (Zhang et al. 2021, Table 2), kept as published.
    at_vanish_ratio: float = 1e-3
    at_vanish_first: float = 1e-4
    at_explode_ratio: float = 70.0
    # End-to-end ||dE/dx_0|| / ||dE/dx_L|| (and the fitted factor exp(L s)), from the principle above:
    vanish_ratio: float = FLOAT32_UNIT_ROUNDOFF / HEALTHY_UPDATE_RATIO  # 5.96e-5
    explode_ratio: float = 1.0 / HEALTHY_UPDATE_RATIO  # 1e3
    # Median matmul weight gain RMS(W) * sqrt(fan_in) (resdiag/diagnosis/scale.py): He et al. 2015 keep
    # the forward variance at gain 1 (linear) to sqrt(2) (ReLU); above 2 the typical layer multiplies
    # it by more than 4, twice the largest preserving factor (docs/gradflow.md has the calibration).
    gain_max: float = 2.0

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
    # Token rank of (batch, tokens, features) boundaries (docs/tokens.md has the calibration: intact
    # transformers and ViTs keep token_res(x_L) >= 0.018, residual-free ones of depth >= 6 <= 2.2e-7).
    token_res: float = 1e-3  # collapse when the batch-mean token res(X) at x_L is below
    token_retention: float = 0.25  # collapse when token erank ratio x_L / x_0 is below

    def __post_init__(self) -> None:  # finite and in range, or ResdiagError (resdiag/thresholds_schema.py)
        check_thresholds(self)
