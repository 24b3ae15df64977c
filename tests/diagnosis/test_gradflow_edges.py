"""Edges of the gradient-flow rules (resdiag/diagnosis/gradflow.py's docstring is the spec): each
finding's fields, strict inequalities at the thresholds, the slope rule's block count, severity."""

import math

import pytest

from resdiag.diagnosis.gradflow import AUTOTRAINER, HE2016, diagnose
from resdiag.diagnosis.thresholds import GradThresholds
from resdiag.results import GradFlowSummary

T = GradThresholds()


def run(w, b, *, at_ratio=None, b_ratio=None, slope=None, out=1.0, **t):
    """diagnose() on weight norms w and boundary norms b, ||dE/d output|| = out; the summary's
    numbers default to the closed forms w[0]/w[-1], b[0]/b[-1] and the exact per-block slope of a
    geometric profile."""
    n = len(b) - 1
    at = w[0] / w[-1] if at_ratio is None else at_ratio
    br = b[0] / b[-1] if b_ratio is None else b_ratio
    s = (math.log(br) / n if n else math.nan) if slope is None else slope
    summary = GradFlowSummary(at, br, s, math.exp(s) if math.isfinite(s) else math.nan, out)
    return diagnose(summary, list(w), [f"w{i}" for i in range(len(w))],
                    list(b), [f"x{i}" for i in range(len(b))], GradThresholds(**t))


# What the evidence rules say about the output: flat (||dE/d output|| = 0) or not recorded (NaN).
FLAT = {True: "the loss is flat in the model's output (||dE/d output|| = 0; e.g. cross-entropy over a "
              "single class)",
        False: "the gradient at the model's output was not recorded"}


def only(v, rule):
    (f,) = [f for f in v.findings if f.rule == rule]
    return f


def test_non_finite_findings_carry_the_value_the_bound_the_kind_and_the_source():
    v = run([1.0, math.inf, 1.0], [1.0, 1.0, 1.0], at_ratio=1.0)
    (f,) = v.findings
    assert (f.rule, f.status, f.value, f.threshold, f.source) == ("non_finite", "exploding", math.inf,
                                                                 math.inf, AUTOTRAINER)
    assert f.message.startswith("non-finite weight gradient at w1")
    v = run([1.0, 1.0], [2.0, math.nan, 1.0], b_ratio=2.0, slope=0.1)
    (f,) = v.findings
    assert math.isnan(f.value) and f.threshold == math.inf
    assert f.message.startswith("non-finite activation gradient at x1")


def test_the_most_severe_finding_sets_the_status():
    # exploding (non-finite weight) beats vanishing (nothing reaches x_0): severity, not name order.
    v = run([math.nan, 1.0], [0.0, 1.0, 1.0], at_ratio=math.nan, b_ratio=0.0, slope=math.nan)
    assert {f.status for f in v.findings} == {"exploding", "vanishing"}
    assert v.status == "exploding"
    v = run([1.0, 1.0], [0.0, 1.0, 1.0], b_ratio=0.0, slope=math.nan)
    assert v.status == "vanishing"


@pytest.mark.parametrize("rule", ["boundary", "slope"])
def test_ratio_rules_are_strict_at_the_thresholds(rule):
    def verdict(value):
        if rule == "boundary":
            return run([1.0, 1.0], [1.0, 1.0], b_ratio=value, slope=0.0)
        return run([1.0, 1.0], [1.0, 1.0], b_ratio=1.0, slope=math.log(value))

    # Exactly at a bound is not beyond it (the slope rule goes through exp(log(x)), which is not
    # exact, so it is checked a hair inside); a hair beyond is.
    eps = 0.0 if rule == "boundary" else 1e-9
    assert not verdict(T.vanish_ratio * (1 + eps)).findings
    assert not verdict(T.explode_ratio * (1 - eps)).findings
    for value, status, bound in [(T.vanish_ratio * 0.99, "vanishing", T.vanish_ratio),
                                 (T.explode_ratio * 1.01, "exploding", T.explode_ratio)]:
        f = only(verdict(value), f"{rule}.{status}")
        assert (f.status, f.threshold, f.source) == (status, bound, HE2016)
        assert f.value == pytest.approx(value, rel=1e-12)


def test_boundary_finding_names_the_ratio_and_its_bound():
    f = only(run([1.0, 1.0], [1e-6, 1.0]), "boundary.vanishing")
    assert f.message == f"||dE/dx_0|| / ||dE/dx_L|| = {1e-6:.3g} < {T.vanish_ratio:g}"
    f = only(run([1.0, 1.0], [1e6, 1.0]), "boundary.exploding")
    assert f.message == f"||dE/dx_0|| / ||dE/dx_L|| = {1e6:.3g} > {T.explode_ratio:g}"


@pytest.mark.parametrize("blocks", [1, 3, 4, 7])
def test_slope_rule_extrapolates_over_the_number_of_blocks(blocks):
    # L blocks, L + 1 boundaries: the fitted end-to-end factor is exp(L * s) (docstring), here with
    # s chosen so that exp(L * s) = 1e-5: beyond the bound, while exp((L - 1) * s) would not be.
    s = math.log(1e-5) / blocks
    v = run([1.0, 1.0], [1.0] * (blocks + 1), b_ratio=1.0, slope=s)
    f = only(v, "slope.vanishing")
    assert f.value == pytest.approx(1e-5, rel=1e-9)
    assert f.message.startswith(f"fitted end-to-end factor exp({blocks} * slope) = ")


def test_a_single_boundary_is_inconclusive_not_extrapolated():
    v = run([1.0, 1.0], [1.0], b_ratio=math.nan, slope=-5.0)
    (f,) = v.findings
    assert v.status == "inconclusive"
    assert (f.rule, f.status, f.value, f.threshold, f.source) == ("evidence.boundaries", "inconclusive",
                                                                 1.0, 2.0, HE2016)
    assert f.message == ("no block boundary found, so the boundary and slope rules were not applied: "
                         "name the blocks with --blocks REGEX (Monitor: blocks=REGEX)")


def test_autotrainer_vanishing_fields_and_strictness():
    f = only(run([1e-6, 1.0, 1.0], [1.0, 1.0]), "autotrainer.vanishing")
    assert (f.status, f.value, f.threshold, f.source) == ("vanishing", 1e-6, T.at_vanish_ratio, AUTOTRAINER)
    assert f.message == (f"first/last weight-gradient ratio {1e-6:.3g} < {T.at_vanish_ratio:g} "
                         f"and first norm {1e-6:.3g} < {T.at_vanish_first:g}")
    # Both conditions are strict: a first norm exactly at its bound, or a ratio exactly at its bound,
    # is not vanishing.
    first = T.at_vanish_first
    assert not run([first, 1.0], [1.0, 1.0], at_ratio=1e-6).findings
    assert not run([1e-6, 1.0], [1.0, 1.0], at_ratio=T.at_vanish_ratio).findings
    assert only(run([first * 0.99, 1.0], [1.0, 1.0], at_ratio=1e-6), "autotrainer.vanishing")


def test_autotrainer_exploding_fields_and_strictness():
    f = only(run([80.0, 1.0], [1.0, 1.0]), "autotrainer.exploding")
    assert (f.status, f.value, f.threshold, f.source) == ("exploding", 80.0, T.at_explode_ratio, AUTOTRAINER)
    assert f.message == f"first/last weight-gradient ratio {80.0:.3g} > {T.at_explode_ratio:g}"
    assert not run([T.at_explode_ratio, 1.0], [1.0, 1.0]).findings


def test_autotrainer_needs_weights_and_a_finite_ratio():
    v = run([], [1.0, 1.0], at_ratio=1e-9)
    (f,) = v.findings
    assert v.status == "inconclusive"
    assert (f.rule, f.value, f.threshold, f.source) == ("evidence.weights", 0.0, 1.0, AUTOTRAINER)
    assert f.message == ("no conv/linear weight received a gradient (none found, or all frozen or "
                         "unused), so the AUTOTRAINER rules were not applied")
    v = run([1e-9, 1.0], [1.0, 1.0], at_ratio=math.nan)
    (f,) = v.findings
    assert (f.rule, f.status, f.source) == ("evidence.weights", "inconclusive", AUTOTRAINER)
    assert math.isnan(f.value) and math.isnan(f.threshold)
    assert f.message == ("the first/last weight-gradient ratio is undefined, so the AUTOTRAINER rules "
                         "were not applied")


def test_zero_at_the_input_fields_and_conditions():
    f = only(run([1.0, 1.0], [0.0, 1.0], b_ratio=0.0, slope=math.nan), "zero")
    assert (f.status, f.value, f.threshold, f.source) == ("vanishing", 0.0, 0.0, HE2016)
    assert f.message.startswith("||dE/dx_0|| is exactly 0: no gradient reaches the first block (")
    # Deeper profiles: x_0 against x_L, whatever lies between.
    assert only(run([1.0, 1.0], [0.0, 0.0, 1.0], b_ratio=0.0, slope=math.nan), "zero")
    assert not run([1.0, 1.0], [1.0, 0.0, 1.0], b_ratio=1.0, slope=0.0).findings


@pytest.mark.parametrize("out, status, rule", [(2.0, "vanishing", "zero"),
                                               (0.0, "inconclusive", "evidence.output"),
                                               (math.nan, "inconclusive", "evidence.output")])
def test_nothing_at_x_L_depends_on_the_output_gradient(out, status, rule):
    # x_L = 0: vanishing if the output received a gradient (the head passes none back), else there
    # is nothing to judge; x_0 = 0 as well is not a second "zero" finding.
    v = run([1.0, 1.0], [0.0, 1.0, 0.0], b_ratio=math.nan, slope=math.nan, out=out)
    (f,) = v.findings
    assert v.status == status and (f.rule, f.status, f.value, f.threshold, f.source) == (
        rule, status, 0.0, 0.0, HE2016)
    if out > 0:
        assert f.message == f"||dE/dx_L|| is exactly 0 while ||dE/d output|| = {out:.3g}: no gradient passes back from the output"
    else:
        assert f.message == f"||dE/dx_L|| is exactly 0 and {FLAT[out == 0]}: there is no gradient flow to judge"


@pytest.mark.parametrize("out, status, rule", [(2.0, "vanishing", "zero"),
                                               (0.0, "inconclusive", "evidence.weights"),
                                               (math.nan, "inconclusive", "evidence.weights")])
def test_a_zero_last_weight_gradient_depends_on_the_output_gradient(out, status, rule):
    v = run([1.0, 0.0], [1.0, 1.0], at_ratio=math.inf, out=out)
    (f,) = v.findings
    assert v.status == status and (f.rule, f.status, f.value, f.threshold) == (rule, status, 0.0, 0.0)
    assert f.source == (HE2016 if rule == "zero" else AUTOTRAINER)
    if out > 0:
        assert f.message == (f"the last layer's weight gradient is exactly 0 while ||dE/d output|| = "
                             f"{out:.3g}: its input is 0")
    else:
        assert f.message == (f"the last layer's weight gradient is exactly 0 and {FLAT[out == 0]}: the "
                             "AUTOTRAINER rules were not applied")
    # The first layer at 0 and the last not: that is the AUTOTRAINER ratio's business (0 < 1e-3).
    assert only(run([0.0, 1.0], [1.0, 1.0], out=out), "autotrainer.vanishing")


def test_non_finite_suppresses_the_evidence_rules():
    v = run([1.0, math.nan], [1.0, 0.0], at_ratio=math.nan, b_ratio=math.nan, slope=math.nan, out=0.0)
    assert [f.rule for f in v.findings] == ["non_finite"] and v.status == "exploding"


def test_inconclusive_ranks_between_healthy_and_vanishing():
    v = run([], [1e-6, 1.0], at_ratio=math.nan)  # no weights (inconclusive) and a vanishing boundary ratio
    assert {f.status for f in v.findings} == {"inconclusive", "vanishing"}
    assert v.status == "vanishing"
