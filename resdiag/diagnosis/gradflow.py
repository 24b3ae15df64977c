"""Gradient-flow verdict: vanishing, exploding or healthy, from documented rules.

Rules (each finding names its rule id and source):

``non_finite``           any NaN/inf weight gradient or activation gradient -> "exploding"
                         (AUTOTRAINER, Zhang et al. 2021, treats NaN gradients as exploding).
``autotrainer.vanishing`` ||dE/dW_first|| / ||dE/dW_last|| < ``at_vanish_ratio`` (1e-3) and
                         ||dE/dW_first|| < ``at_vanish_first`` (1e-4) -> "vanishing"
``autotrainer.exploding`` ||dE/dW_first|| / ||dE/dW_last|| > ``at_explode_ratio`` (70) -> "exploding"
                         (Zhang et al. 2021, "AUTOTRAINER: An Automatic DNN Training Problem
                         Detection and Repair System", ICSE, Table 2 defaults).
``boundary.vanishing``   ||dE/dx_0|| / ||dE/dx_L|| < ``vanish_ratio`` -> "vanishing"
``boundary.exploding``   ||dE/dx_0|| / ||dE/dx_L|| > ``explode_ratio`` -> "exploding"
                         (the seed's eq.: with identity shortcuts dE/dx_0 = dE/dx_L (1 + ...);
                         He et al. 2016, eqs. 5 and 8)
``zero``                 ||dE/dx_0|| = 0 while ||dE/dx_L|| > 0, or every weight gradient exactly 0
                         -> "vanishing": nothing reaches the input (the ratios are 0/0 then).
``slope.vanishing`` / ``slope.exploding``  the fitted end-to-end factor exp(L * s), s the fitted
                         per-block slope of ln ||dE/dx_l|| toward the input, beyond the same
                         ratios: a trend over the whole profile, robust to a noisy end point.
"""

from __future__ import annotations

import math

from resdiag.diagnosis.thresholds import GradThresholds
from resdiag.metrics.gradient import first_non_finite
from resdiag.results import Finding, GradFlowSummary, Verdict

AUTOTRAINER = "Zhang et al. 2021, AUTOTRAINER (ICSE), gradient rules"
SEED = "He et al. 2016, Identity Mappings in Deep Residual Networks, eqs. 5 and 8"
SEVERITY = {"healthy": 0, "vanishing": 1, "exploding": 2}


def diagnose(
    summary: GradFlowSummary,
    weight_grads: list[float],
    weight_names: list[str],
    boundary_grads: list[float],
    boundary_names: list[str],
    t: GradThresholds = GradThresholds(),
) -> Verdict:
    findings: list[Finding] = []
    for values, names, what in (
        (weight_grads, weight_names, "weight gradient"),
        (boundary_grads, boundary_names, "activation gradient"),
    ):
        # Backward runs from the output: the first non-finite value on the way back is the one
        # nearest the output, i.e. the last in forward order.
        i = first_non_finite(values[::-1])
        if i is not None:
            j = len(values) - 1 - i
            findings.append(
                Finding("non_finite", "exploding", values[j], math.inf,
                        f"non-finite {what} at {names[j]} (first on the way back from the output)",
                        AUTOTRAINER)
            )
    findings += _zero(weight_grads, boundary_grads)
    findings += _autotrainer(summary.weight_first_last_ratio, weight_grads, t)
    findings += _ratio_rules("boundary", summary.boundary_ratio, "||dE/dx_0|| / ||dE/dx_L||", t)
    n = max(len(boundary_grads) - 1, 0)
    slope = summary.log_growth_per_block
    fitted = math.exp(min(slope * n, 700.0)) if math.isfinite(slope) else math.nan
    findings += _ratio_rules("slope", fitted, f"fitted end-to-end factor exp({n} * slope)", t)
    status = max((f.status for f in findings), key=SEVERITY.__getitem__, default="healthy")
    return Verdict(status, tuple(findings))


def _zero(weight_grads: list[float], boundary_grads: list[float]) -> list[Finding]:
    if len(boundary_grads) >= 2 and boundary_grads[0] == 0 and boundary_grads[-1] > 0:
        return [Finding("zero", "vanishing", 0.0, 0.0,
                        "||dE/dx_0|| is exactly 0: no gradient reaches the first block", SEED)]
    if weight_grads and all(g == 0 for g in weight_grads):
        return [Finding("zero", "vanishing", 0.0, 0.0, "every weight gradient is exactly 0", SEED)]
    return []


def _autotrainer(ratio: float, weight_grads: list[float], t: GradThresholds) -> list[Finding]:
    if not weight_grads or not math.isfinite(ratio):
        return []
    first = weight_grads[0]
    if ratio < t.at_vanish_ratio and first < t.at_vanish_first:
        return [Finding("autotrainer.vanishing", "vanishing", ratio, t.at_vanish_ratio,
                        f"first/last weight-gradient ratio {ratio:.3g} < {t.at_vanish_ratio:g} "
                        f"and first norm {first:.3g} < {t.at_vanish_first:g}", AUTOTRAINER)]
    if ratio > t.at_explode_ratio:
        return [Finding("autotrainer.exploding", "exploding", ratio, t.at_explode_ratio,
                        f"first/last weight-gradient ratio {ratio:.3g} > {t.at_explode_ratio:g}",
                        AUTOTRAINER)]
    return []


def _ratio_rules(rule: str, value: float, what: str, t: GradThresholds) -> list[Finding]:
    if not math.isfinite(value):
        return []
    if value < t.vanish_ratio:
        return [Finding(f"{rule}.vanishing", "vanishing", value, t.vanish_ratio,
                        f"{what} = {value:.3g} < {t.vanish_ratio:g}", SEED)]
    if value > t.explode_ratio:
        return [Finding(f"{rule}.exploding", "exploding", value, t.explode_ratio,
                        f"{what} = {value:.3g} > {t.explode_ratio:g}", SEED)]
    return []
