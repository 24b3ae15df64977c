import math

from resdiag.diagnosis.gradflow import diagnose
from resdiag.diagnosis.thresholds import GradThresholds
from resdiag.results import GradFlowSummary


def verdict(w, b, out=1.0, **t):
    from resdiag.metrics.gradient import end_to_end_ratio, log_growth_per_block

    s = log_growth_per_block(b)
    summary = GradFlowSummary(end_to_end_ratio(w), end_to_end_ratio(b), s, math.exp(s), out)
    return diagnose(summary, w, [f"w{i}" for i in range(len(w))], b, [f"x{i}" for i in range(len(b))],
                    GradThresholds(**t))


def rules(v):
    return {f.rule for f in v.findings}


def test_healthy():
    v = verdict([1.0, 1.2, 1.0], [2.0, 1.5, 1.0])
    assert v.status == "healthy" and not v.findings


def test_autotrainer_vanishing_needs_both_conditions():
    assert "autotrainer.vanishing" in rules(verdict([1e-5, 1e-3, 1.0], [1, 1, 1]))
    assert "autotrainer.vanishing" not in rules(verdict([1e-2, 1e-3, 100.0], [1, 1, 1]))


def test_autotrainer_exploding():
    v = verdict([80.0, 1.0, 1.0], [1, 1, 1])
    assert v.status == "exploding" and "autotrainer.exploding" in rules(v)


def test_boundary_and_slope_rules():
    b = [0.5 ** (20 - l) for l in range(21)]  # 1e-6 end to end
    v = verdict([1, 1, 1], b)
    assert v.status == "vanishing" and {"boundary.vanishing", "slope.vanishing"} <= rules(v)
    v = verdict([1, 1, 1], b[::-1])
    assert v.status == "exploding"
    v = verdict([1, 1, 1], b, vanish_ratio=1e-7)
    assert v.status == "healthy"


def test_non_finite_names_the_first_layer_on_the_way_back():
    v = verdict([math.nan, math.inf, 1.0], [math.inf, 2.0, 1.0])
    msgs = [f.message for f in v.findings if f.rule == "non_finite"]
    assert v.status == "exploding" and any("w1" in m for m in msgs) and any("x0" in m for m in msgs)


def test_zero_at_the_input_with_gradient_at_the_output_is_vanishing():
    v = verdict([1e-9, 1.0], [0.0, 0.5, 1.0])
    assert v.status == "vanishing" and "zero" in rules(v)


def test_no_gradient_at_the_output_is_inconclusive_not_vanishing():
    """Cross-entropy over one class: every gradient is exactly 0, the last included. That is not a
    gradient that vanished on its way back; there is nothing to judge."""
    for out in (0.0, math.nan):  # flat in the output, or the output gradient not recorded
        v = verdict([0.0, 0.0], [0.0, 0.0, 0.0], out=out)
        assert v.status == "inconclusive"
        assert {"evidence.output", "evidence.weights"} <= rules(v) and "zero" not in rules(v)


def test_no_gradient_past_a_head_that_receives_one_is_vanishing():
    """Zero-initialised weights: the logits get a gradient, nothing passes back from them."""
    v = verdict([0.0, 0.0], [0.0, 0.0, 0.0], out=0.3)
    assert v.status == "vanishing" and "zero" in rules(v)
    assert not any(r.startswith("evidence") for r in rules(v))


def test_no_boundaries_is_inconclusive_with_a_hint():
    v = verdict([1.0, 1.0], [])
    assert v.status == "inconclusive" and rules(v) == {"evidence.boundaries"}
    assert "--blocks" in v.findings[0].message


def test_no_weights_is_inconclusive():
    v = verdict([], [2.0, 1.5, 1.0])
    assert v.status == "inconclusive" and rules(v) == {"evidence.weights"}
    assert verdict([], []).status == "inconclusive"


def test_a_problem_on_part_of_the_evidence_outranks_inconclusive():
    v = verdict([], [1e-9, 1e-3, 1.0])
    assert v.status == "vanishing" and "evidence.weights" in rules(v)
    v = verdict([80.0, 1.0], [])
    assert v.status == "exploding" and "evidence.boundaries" in rules(v)


def test_non_finite_is_not_also_inconclusive():
    v = verdict([1.0, math.nan], [math.nan, math.nan])
    assert v.status == "exploding" and not any(r.startswith("evidence") for r in rules(v))
