"""The token-collapse rule (resdiag/diagnosis/tokens.py): numbers and thresholds in, findings out."""

import math

from resdiag.diagnosis.tokens import TokenThresholds, diagnose_tokens, not_applied

NAMES = ["l.0:in", "l.1:in", "l.1:out"]


def test_intact_profile_has_no_finding():
    assert diagnose_tokens([0.86, 0.8, 0.72], [0.9, 0.88, 0.85], NAMES) == []


def test_collapsed_tokens_fire_both_rules_with_values():
    found = diagnose_tokens([0.86, 1e-3, 2e-7], [0.9, 0.1, 0.0], NAMES)
    assert [f.rule for f in found] == ["tokens.res", "tokens.retention"]
    assert found[0].value == 2e-7 and found[0].threshold == TokenThresholds().min_res
    assert found[1].value == 0.0 and all(f.status == "collapse" for f in found)


def test_thresholds_are_applied_strictly():
    t = TokenThresholds(min_res=0.5, min_retention=0.5)
    assert diagnose_tokens([0.9, 0.5], [0.8, 0.4], NAMES[:2], t) == []
    assert [f.rule for f in diagnose_tokens([0.9, 0.49], [0.8, 0.39], NAMES[:2], t)] == \
        ["tokens.res", "tokens.retention"]


def test_not_applied_says_why():
    assert "no boundary is a 3-D" in not_applied([], [])
    assert "non-finite features at l.1:in" in not_applied([0.9, math.nan], NAMES[:2])
    assert diagnose_tokens([0.9, math.nan], [0.9, math.nan], NAMES[:2]) == []
    assert not_applied([0.9], NAMES[:1]) is None
