"""Rank verdict rules, the evidence rules included, on constructed rows."""

import math

from resdiag.diagnosis.rank import diagnose_rank
from resdiag.diagnosis.thresholds import RankThresholds
from resdiag.results import FeatureRankRow, RankSummary, WeightRank


def weight(i, ratio=0.9, finite=True):
    return WeightRank(i, f"w{i}", "linear", (4, 4), (4, 4), 1, 4 * ratio, ratio, 3.0, 4, 1.0, 2.0, finite)


def feature(i, ratio, rank1=0.6, finite=True):
    return FeatureRankRow(i, f"b{i}:in", (8, 4), ratio * 4, ratio, rank1, 0.5, 1.0, 1.0, finite)


def run(weights, features, **t):
    first = features[0].erank_ratio if features else math.nan
    last = features[-1].erank_ratio if features else math.nan
    ratios = [w.erank_ratio for w in weights]
    summary = RankSummary(first, last, last / first if features and first else math.nan,
                          features[-1].rank1_distance if features else math.nan,
                          min(ratios, default=math.nan), math.nan, math.nan)
    return diagnose_rank(summary, tuple(weights), tuple(features), RankThresholds(**t))


def rules(v):
    return {f.rule for f in v.findings}


def test_healthy_needs_features_and_weights():
    assert run([weight(0)], [feature(0, 0.8), feature(1, 0.8)]).status == "healthy"
    v = run([weight(0)], [])
    assert v.status == "inconclusive" and rules(v) == {"evidence.features"}
    assert "--blocks" in v.findings[0].message
    v = run([], [feature(0, 0.8), feature(1, 0.8)])
    assert v.status == "inconclusive" and rules(v) == {"evidence.weights"}


def test_zero_erank_at_the_input_is_inconclusive():
    v = run([weight(0)], [feature(0, 0.0), feature(1, 0.5)])
    assert v.status == "inconclusive" and rules(v) == {"evidence.features"}


def test_collapse_outranks_inconclusive_and_non_finite_outranks_collapse():
    v = run([], [feature(0, 0.8), feature(1, 0.1)])
    assert v.status == "collapse" and {"features.retention", "evidence.weights"} <= rules(v)
    v = run([weight(0, finite=False)], [feature(0, 0.8), feature(1, 0.1)])
    assert v.status == "non_finite"


def test_rank1_rule():
    v = run([weight(0)], [feature(0, 0.8), feature(1, 0.8, rank1=0.05)])
    assert v.status == "collapse" and rules(v) == {"features.rank1"}


def seq(i, ratio, res, token_ratio):
    from dataclasses import replace

    return replace(feature(i, ratio), tokens=16, token_res=res, token_erank_ratio=token_ratio)


def test_token_rules_fire_on_sequence_boundaries_only():
    intact = [seq(0, 0.8, 0.9, 0.9), seq(1, 0.8, 0.5, 0.8)]
    assert run([weight(0)], intact).status == "healthy"
    collapsed = [seq(0, 0.8, 0.9, 0.9), seq(1, 0.8, 2e-7, 0.1)]
    v = run([weight(0)], collapsed)
    assert v.status == "collapse" and {"tokens.res", "tokens.retention"} <= rules(v)
    assert run([weight(0)], collapsed, token_res=1e-7, token_retention=0.1).status == "healthy"


def test_unmeasured_token_rank_is_inconclusive():
    rows = [seq(0, 0.8, 0.9, 0.9), seq(1, 0.8, math.nan, math.nan)]
    v = run([weight(0)], rows)
    assert v.status == "inconclusive" and rules(v) == {"evidence.tokens"}


def test_an_embedding_is_not_weight_evidence_nor_judged_by_the_weight_rule():
    from dataclasses import replace

    table = replace(weight(0, ratio=0.01), kind="embedding")  # a low-rank lookup table
    v = run([table], [feature(0, 0.8), feature(1, 0.8)])
    assert v.status == "inconclusive" and rules(v) == {"evidence.weights"}
    v = run([table, weight(1)], [feature(0, 0.8), feature(1, 0.8)])
    assert v.status == "healthy"


def test_a_network_whose_only_listed_weight_is_an_embedding_is_inconclusive():
    import torch
    from torch import nn

    from resdiag.probes.features import FeatureProbe
    from resdiag.results import ModelInfo
    from resdiag.run.rank import rank_from_probe

    class Mix(nn.Module):  # a matmul on a raw parameter: not a layer resdiag can find
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(8, 8))

        def forward(self, x):
            return x + torch.relu(x @ self.w)

    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(32, 8), nn.Sequential(Mix(), Mix()))
    with torch.no_grad(), FeatureProbe(model, [("1.0", model[1][0]), ("1.1", model[1][1])]) as probe:
        model(torch.randint(0, 32, (64, 6)))
    r = rank_from_probe(model, probe, ModelInfo("emb", "custom", 0, {}))
    assert [w.kind for w in r.weights] == ["embedding"]
    assert "evidence.weights" in rules(r.verdict) and r.verdict.status != "healthy"
