import math

from resdiag.diagnosis.gradflow import diagnose
from resdiag.diagnosis.thresholds import GradThresholds
from resdiag.results import GradFlowSummary


def verdict(w, b, **t):
    from resdiag.metrics.gradient import end_to_end_ratio, log_growth_per_block

    s = log_growth_per_block(b)
    summary = GradFlowSummary(end_to_end_ratio(w), end_to_end_ratio(b), s, math.exp(s))
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


def test_zero_gradients_are_vanishing_not_healthy():
    v = verdict([0.0, 0.0], [0.0, 0.0, 0.0])
    assert v.status == "vanishing" and "zero" in rules(v)
    v = verdict([0.0, 1.0], [0.0, 0.5, 1.0])
    assert v.status == "vanishing" and "zero" in rules(v)
