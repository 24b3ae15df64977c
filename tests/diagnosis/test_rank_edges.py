"""Edges of the rank rules (resdiag/diagnosis/rank.py's docstring is the spec): each finding's
fields, strict inequalities at the thresholds, which layer a finding names, severity."""

import dataclasses
import math

import pytest

from resdiag.diagnosis.rank import DONG, DEGRADATION, diagnose_rank
from resdiag.diagnosis.thresholds import RankThresholds
from resdiag.results import FeatureRankRow, RankSummary, WeightRank

T = RankThresholds()
NEUTRAL = {"float": 1.0, "int": 0, "str": "", "bool": True}


def make(cls, **kw):
    """An instance of a result dataclass: healthy placeholders (1.0, finite) except ``kw``."""
    values = {f.name: NEUTRAL.get(str(f.type), ()) for f in dataclasses.fields(cls)}
    if cls is FeatureRankRow:
        values["shape"] = (256, 64)  # a batch and width at which every feature rule can fire
        values["erank"] = 63.0  # erank_ratio 1 x the ceiling min(255, 64): retention reads erank
    return cls(**{**values, **kw})


def healthy_rows(cls, n=2):
    return [make(cls, name=f"{cls.__name__}{i}") for i in range(n)]


def verdict(weights=None, features=None, **summary):
    """diagnose_rank on healthy weights and features (two boundaries) unless given."""
    weights = healthy_rows(WeightRank) if weights is None else weights
    features = healthy_rows(FeatureRankRow) if features is None else features
    return diagnose_rank(make(RankSummary, **summary), tuple(weights), tuple(features))


def only(v, rule):
    (f,) = [f for f in v.findings if f.rule == rule]
    return f


def test_healthy_placeholders_are_healthy():
    v = verdict()
    assert v.status == "healthy" and v.findings == ()


def test_evidence_rules_fields():
    v = verdict(features=healthy_rows(FeatureRankRow, 1), weights=[])
    assert v.status == "inconclusive"
    f, g = v.findings
    assert (f.rule, f.status, f.value, f.threshold, f.source) == (
        "evidence.features", "inconclusive", 1.0, 2.0, DEGRADATION)
    assert f.message == ("no block boundary found, so the feature rules were not applied: name the "
                         "blocks with --blocks REGEX (Monitor: blocks=REGEX)")
    assert (g.rule, g.status, g.value, g.threshold, g.source) == (
        "evidence.weights", "inconclusive", 0.0, 1.0, DEGRADATION)
    assert g.message == "no conv/linear weight found, so the weight rule was not applied"
    (f,) = verdict(feature_erank_ratio_first=0.0).findings
    assert (f.rule, f.status, f.value, f.threshold, f.source) == (
        "evidence.features", "inconclusive", 0.0, 0.0, DEGRADATION)
    assert f.message == ("the feature erank at x_0 is 0 (every sample alike at the first block), so "
                         "retention is undefined: use inputs that differ")
    (f,) = verdict(feature_erank_ratio_first=math.nan).findings
    assert f.rule == "evidence.features" and math.isnan(f.value)
    # A non-finite feature row is its own finding, not also "erank 0 at x_0".
    rows = [make(FeatureRankRow, name="a", finite=False), make(FeatureRankRow, name="b")]
    assert [f.rule for f in verdict(features=rows, feature_erank_ratio_first=0.0).findings] == ["non_finite"]


@pytest.mark.parametrize("kind, cls", [("weight", WeightRank), ("features", FeatureRankRow)])
def test_non_finite_names_the_first_bad_row_in_forward_order(kind, cls):
    rows = [make(cls, name="a"), make(cls, name="b", finite=False), make(cls, name="c", finite=False)]
    v = verdict(rows if kind == "weight" else None, rows if kind == "features" else None)
    f = only(v, "non_finite")
    assert v.status == "non_finite" and f.status == "non_finite" and f.source == DEGRADATION
    assert math.isnan(f.value) and math.isnan(f.threshold)
    assert f.message == f"non-finite {kind} at b (first in forward order)"


def test_non_finite_outranks_collapse():
    v = verdict([make(WeightRank, name="w", finite=False, erank_ratio=0.01)],
                feature_erank_retention=0.01)
    assert {f.status for f in v.findings} == {"non_finite", "collapse"}
    assert v.status == "non_finite"
    v = verdict([], feature_erank_retention=0.01)  # collapse outranks inconclusive
    assert {f.status for f in v.findings} == {"inconclusive", "collapse"}
    assert v.status == "collapse"


def test_retention_rule_fields_and_strictness():
    assert not verdict(feature_erank_retention=T.feature_retention).findings
    assert not verdict(feature_erank_retention=math.nan).findings
    v = verdict(feature_erank_retention=0.2, feature_erank_ratio_first=0.8, feature_erank_ratio_last=0.16)
    f = only(v, "features.retention")
    assert v.status == "collapse" == f.status
    assert (f.value, f.threshold, f.source) == (0.2, T.feature_retention, DEGRADATION)
    assert f.message == (f"feature erank ratio falls from {0.8:.3g} at x_0 to {0.16:.3g} at x_L "
                         f"(retention {0.2:.3g} < {T.feature_retention:g})")


def test_rank1_rule_fields_and_strictness():
    assert not verdict(rank1_distance_last=T.rank1_distance).findings
    assert not verdict(rank1_distance_last=math.nan).findings
    f = only(verdict(rank1_distance_last=0.03), "features.rank1")
    assert (f.status, f.value, f.threshold, f.source) == ("collapse", 0.03, T.rank1_distance, DONG)
    assert f.message == f"features at x_L are {0.03:.3g} from rank one (< {T.rank1_distance:g})"


def test_weight_rule_counts_the_low_layers_and_names_the_lowest():
    weights = [make(WeightRank, name="a", erank_ratio=0.05), make(WeightRank, name="b", erank_ratio=0.02),
               make(WeightRank, name="c", erank_ratio=T.weight_erank_ratio),  # at the bound: not low
               make(WeightRank, name="d", erank_ratio=math.nan), make(WeightRank, name="e", erank_ratio=0.9)]
    f = only(verdict(weights), "weights.erank")
    assert (f.status, f.value, f.threshold, f.source) == ("collapse", 0.02, T.weight_erank_ratio, DEGRADATION)
    assert f.message == (f"2 weight matrices have erank ratio < {T.weight_erank_ratio:g}; "
                         f"lowest {0.02:.3g} at b")
    assert not verdict(weights[2:]).findings


def test_thresholds_are_the_ones_passed():
    t = RankThresholds(feature_retention=0.9, rank1_distance=0.9, weight_erank_ratio=0.95)
    v = diagnose_rank(make(RankSummary, feature_erank_retention=0.8, rank1_distance_last=0.8),
                      (make(WeightRank, name="w", erank_ratio=0.9),), tuple(healthy_rows(FeatureRankRow)), t)
    assert {f.rule for f in v.findings} == {"features.retention", "features.rank1", "weights.erank"}
    assert {f.threshold for f in v.findings} == {0.9, 0.95}
