"""Gradient-flow verdict: vanishing, exploding, healthy or inconclusive, from documented rules.

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
                         (He et al. 2016, eqs. 5 and 8: with identity shortcuts
                         dE/dx_0 = dE/dx_L (1 + ...), with shortcuts scaled by lam a factor prod lam)
``zero``                 ||dE/dx_0|| = 0 while ||dE/dx_L|| > 0, or ||dE/dx_L|| = 0 (or the last
                         layer's weight gradient = 0) while the model's output receives a gradient
                         -> "vanishing": nothing reaches the input. Norms are taken without underflow (resdiag.metrics.norms), so 0 here
                         is a gradient that is exactly 0 in its own dtype, not a tiny one.
``slope.vanishing`` / ``slope.exploding``  the fitted end-to-end factor exp(L * s), s the fitted
                         per-block slope of ln ||dE/dx_l|| toward the input, beyond the same
                         ratios: a trend over the whole profile, robust to a noisy end point.
``scale.gain``           median matmul weight gain RMS(W) sqrt(fan_in) > ``gain_max`` (2) -> "exploding"
                         (He et al. 2015, eq. 10; Glorot & Bengio 2010: n Var(w) = 1 to 2 preserves
                         the forward variance; resdiag/diagnosis/scale.py).

Evidence rules: a rule that cannot be applied says so, with status "inconclusive" and what to do.
``evidence.boundaries``  no block boundary was recorded: the boundary, slope and zero rules have
                         nothing to read (name the blocks with --blocks REGEX).
``evidence.output``      ||dE/dx_L|| is exactly 0 and so is ||dE/d output|| (or it was not
                         recorded): the loss is flat in the network's output, so there is no
                         gradient flow to judge (e.g. cross-entropy over a single class).
``evidence.weights``     no conv/linear weight received a gradient, or the first/last ratio is
                         undefined: the AUTOTRAINER rules cannot be applied.
``evidence.unreached``   a trainable conv/linear layer (requires_grad=True) received no gradient in
                         any batch: not called in the forward, or cut from the loss (detach(),
                         .data, an integer cast, an output the loss ignores). The rules read only the
                         layers that have one, so the verdict cannot be "healthy" for the network.
                         Layers frozen by the user (requires_grad=False) are left out by design: the
                         verdict's scope names them, and they raise no finding.
A boundary recorded in the forward (its tensor required grad) that receives no gradient once a
backward has run has ||dE/dx_l|| = 0 exactly (autograd's None), not NaN: a detach() inside the
residual stream reads as the ``zero`` rule ("vanishing"), never as a non-finite value.
The status is the worst finding's, in the order healthy < inconclusive < vanishing < exploding: a
problem found on part of the evidence is reported as such; "healthy" needs every rule applied.
"""

from __future__ import annotations

import math

from resdiag.diagnosis.scale import weight_scale
from resdiag.diagnosis.thresholds import GradThresholds
from resdiag.metrics.gradient import first_non_finite
from resdiag.results import Finding, GradFlowSummary, Scope, Verdict
from resdiag.results.common import short_list

AUTOTRAINER = "Zhang et al. 2021, AUTOTRAINER (ICSE), gradient rules"
HE2016 = "He et al. 2016, Identity Mappings in Deep Residual Networks, eqs. 5 and 8"
SEVERITY = {"healthy": 0, "inconclusive": 1, "vanishing": 2, "exploding": 3}


def diagnose(
    summary: GradFlowSummary,
    weight_grads: list[float],
    weight_names: list[str],
    boundary_grads: list[float],
    boundary_names: list[str],
    t: GradThresholds = GradThresholds(),
    at_init: bool = True,
    scope: Scope | None = None,
) -> Verdict:
    """``at_init``: the weights are an initialisation; else (a checkpoint, the Monitor) the weight-
    scale rule, a statement about initialisations, is not applied. ``scope``: what the rules read
    (frozen and gradient-less layers, blocks found); it goes into the verdict."""
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
    findings += _evidence(weight_grads, boundary_grads, summary, findings, scope)
    findings += _unreached(scope)
    findings += _zero(boundary_grads)
    findings += _autotrainer(summary.weight_first_last_ratio, weight_grads, t)
    findings += _ratio_rules("boundary", summary.boundary_ratio, "||dE/dx_0|| / ||dE/dx_L||", t)
    n = max(len(boundary_grads) - 1, 0)
    slope = summary.log_growth_per_block
    fitted = math.exp(min(slope * n, 700.0)) if math.isfinite(slope) else math.nan
    findings += _ratio_rules("slope", fitted, f"fitted end-to-end factor exp({n} * slope)", t)
    if at_init:
        findings += weight_scale(summary.weight_gain_median, t)
    status = max((f.status for f in findings), key=SEVERITY.__getitem__, default="healthy")
    return Verdict(status, tuple(findings), scope)


def _unreached(scope: Scope | None) -> list[Finding]:
    if scope is None or not scope.no_gradient:
        return []
    n = len(scope.no_gradient)
    return [Finding("evidence.unreached", "inconclusive", float(n), 0.0,
                    f"{n} trainable conv/linear layer{'s' if n > 1 else ''} received no gradient "
                    f"({short_list(scope.no_gradient)}): not called in the forward, or cut from the loss "
                    "(detach(), .data, an integer cast, an output the loss ignores), so the rules judged "
                    f"only the other {scope.judged}; freeze them (requires_grad_(False)) if they are "
                    "meant to be idle", AUTOTRAINER)]


def _evidence(weight_grads: list[float], boundary_grads: list[float], summary: GradFlowSummary,
              found: list[Finding], scope: Scope | None = None) -> list[Finding]:
    """Findings for a gradient that is exactly 0 at the output end: "vanishing" when the output
    received a gradient (the head passes none back), "inconclusive" when the loss is flat in the
    output or that is unknown; and "inconclusive" for the rules that have nothing to read."""
    if any(f.rule == "non_finite" for f in found):
        return []  # the non-finite value is the finding; ratios of it say nothing more
    out_g = summary.output_grad_norm
    flat = ("the loss is flat in the model's output (||dE/d output|| = 0; e.g. cross-entropy over a "
            "single class)" if out_g == 0 else "the gradient at the model's output was not recorded")
    out = []
    n_frozen = len(scope.frozen) if scope is not None else 0
    frozen = f" ({n_frozen} frozen layer{'s' if n_frozen > 1 else ''})" if n_frozen else ""
    if len(boundary_grads) < 2 and scope is not None and scope.inert_boundaries:
        out.append(Finding("evidence.boundaries", "inconclusive", float(len(boundary_grads)), 2.0,
                           f"{scope.blocks} blocks were found but fewer than two boundaries carry a "
                           f"gradient: {scope.inert_boundaries} did not require grad{frozen}, so the "
                           "boundary and slope rules were not applied", HE2016))
    elif len(boundary_grads) < 2:
        out.append(Finding("evidence.boundaries", "inconclusive", float(len(boundary_grads)), 2.0,
                           "no block boundary found, so the boundary and slope rules were not applied: "
                           "name the blocks with --blocks REGEX (Monitor: blocks=REGEX)", HE2016))
    elif boundary_grads[-1] == 0 and out_g > 0:
        out.append(Finding("zero", "vanishing", 0.0, 0.0, f"||dE/dx_L|| is exactly 0 while ||dE/d output|| "
                           f"= {out_g:.3g}: no gradient passes back from the output", HE2016))
    elif boundary_grads[-1] == 0:
        out.append(Finding("evidence.output", "inconclusive", 0.0, 0.0,
                           f"||dE/dx_L|| is exactly 0 and {flat}: there is no gradient flow to judge",
                           HE2016))
    if not weight_grads:
        out.append(Finding("evidence.weights", "inconclusive", 0.0, 1.0,
                           f"no conv/linear weight received a gradient (none found, or all frozen or "
                           f"unused){frozen}, so the AUTOTRAINER rules were not applied", AUTOTRAINER))
    elif weight_grads[-1] == 0 and out_g > 0:
        out.append(Finding("zero", "vanishing", 0.0, 0.0, "the last layer's weight gradient is exactly 0 "
                           f"while ||dE/d output|| = {out_g:.3g}: its input is 0", HE2016))
    elif weight_grads[-1] == 0:
        out.append(Finding("evidence.weights", "inconclusive", 0.0, 0.0,
                           f"the last layer's weight gradient is exactly 0 and {flat}: the AUTOTRAINER "
                           "rules were not applied", AUTOTRAINER))
    elif not math.isfinite(summary.weight_first_last_ratio):
        why = ["only one unit has a gradient"] if len(weight_grads) == 1 else []
        why += [frozen.strip(" ()")] if frozen else []
        why = f" ({'; '.join(why)})" if why else ""
        out.append(Finding("evidence.weights", "inconclusive", math.nan, math.nan,
                           f"the first/last weight-gradient ratio is undefined{why}, so the "
                           "AUTOTRAINER rules were not applied", AUTOTRAINER))
    return out


def _zero(boundary_grads: list[float]) -> list[Finding]:
    if len(boundary_grads) >= 2 and boundary_grads[0] == 0 and boundary_grads[-1] > 0:
        return [Finding("zero", "vanishing", 0.0, 0.0,
                        "||dE/dx_0|| is exactly 0: no gradient reaches the first block (underflow is "
                        "ruled out; the loss does not depend on it, e.g. a detach() in the stream)",
                        HE2016)]
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
                        f"{what} = {value:.3g} < {t.vanish_ratio:g}", HE2016)]
    if value > t.explode_ratio:
        return [Finding(f"{rule}.exploding", "exploding", value, t.explode_ratio,
                        f"{what} = {value:.3g} > {t.explode_ratio:g}", HE2016)]
    return []
