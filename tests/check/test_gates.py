import math

from resdiag.check.config import GateLimits
from resdiag.check.gates import limit_gates, verdict_gates
from tests.check.fake import run


def test_limits_pass_fail_and_inclusive_bounds():
    limits = GateLimits((("max_boundary_ratio", 2.0), ("min_boundary_ratio", 2.5),
                         ("min_feature_retention", 0.9)))
    gates = limit_gates(run(), limits)
    assert [(g.name, g.passed) for g in gates] == [
        ("max_boundary_ratio", True), ("min_boundary_ratio", False), ("min_feature_retention", True)]
    assert gates[1].message == "boundary_ratio = 2 < 2.5" and gates[1].limit == ">= 2.5"
    assert gates[0].id == "m.max_boundary_ratio" and gates[0].kind == "limit" and gates[0].value == 2.0


def test_non_finite_never_passes():
    limits = GateLimits((("max_boundary_ratio", 1e3), ("min_boundary_ratio", 1e-3)))
    for bad in (math.nan, math.inf, -math.inf):
        gates = limit_gates(run(boundary_ratio=bad), limits)
        assert not any(g.passed for g in gates) and "is not finite" in gates[0].message


def test_verdict_gates():
    ok, bad = verdict_gates(run()), verdict_gates(run(verdict="vanishing"))
    assert [(g.name, g.passed) for g in ok] == [("verdict.grad-flow", True), ("verdict.rank", True)]
    assert not bad[0].passed and bad[0].value == "vanishing" and bad[0].message == "ratio 1e-05 < 0.0001"
