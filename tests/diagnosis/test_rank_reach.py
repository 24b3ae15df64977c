"""A rule that cannot discriminate at the size measured is reported, not applied
(resdiag/diagnosis/reach.py): a micro-batch of 1 is not "collapse", a batch of 2 or 3 is not
"healthy", a sequence of 1 or 2 tokens is neither."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from resdiag.api import Monitor
from resdiag.diagnosis.reach import rank1_min_size, retention_min_ceiling
from resdiag.diagnosis.thresholds import RankThresholds
from resdiag.metrics.rank import feature_rank
from resdiag.metrics.tokens import token_rank


def erank_ratio_np(x):
    """Float64 reference: erank of the centred x (Roy & Vetterli) / min(b - 1, f)."""
    xc = x - x.mean(0)
    s = np.linalg.svd(xc, compute_uv=False)
    s = s[s > 1e-12 * s.max()]
    p = s / s.sum()
    return math.exp(-(p * np.log(p)).sum()) / min(x.shape[0] - 1, x.shape[1])


def test_minimum_sizes_at_the_defaults():
    t = RankThresholds()
    assert retention_min_ceiling(t.feature_retention) + 1 == 4  # samples
    assert retention_min_ceiling(t.token_retention) + 1 == 6  # tokens
    assert rank1_min_size(t.rank1_distance) == 2


@pytest.mark.parametrize("b", [2, 3, 4, 5])
def test_a_rank_one_batch_reads_retention_one_over_the_ceiling(b):
    """The closed form behind the minimum: a rank-one centred x_L has erank 1, ratio 1/(b-1),
    against a full-rank x_0's ratio near 1, so retention < 0.5 is reachable from b = 4 only."""
    rng = np.random.default_rng(b)
    line = np.outer(rng.standard_normal(b), rng.standard_normal(16)) + rng.standard_normal(16)
    full = rng.standard_normal((b, 16))
    got = feature_rank(torch.from_numpy(line)).erank_ratio
    assert got == pytest.approx(erank_ratio_np(line), rel=1e-9) == pytest.approx(1 / (b - 1), rel=1e-9)
    retention = got / feature_rank(torch.from_numpy(full)).erank_ratio
    assert (retention < 0.5) == (b >= retention_min_ceiling(0.5) + 1)


class Line(nn.Module):
    """Every sample onto one line: y = m + u x[:, 0] (a collapse no weight shows)."""

    def __init__(self, d):
        super().__init__()
        self.register_buffer("u", torch.randn(d))
        self.register_buffer("m", torch.randn(d))

    def forward(self, x):
        return self.m + self.u * x[:, :1]


class Res(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.lin = nn.Linear(d, d)

    def forward(self, x):
        return x + torch.relu(self.lin(x))


def collapsing(d=32):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, d), nn.Sequential(Res(d), Res(d), Line(d), Res(d)), nn.Linear(d, 3))


def monitored(model, b):
    monitor = Monitor(model, every=1, features=True, blocks=r"1\.\d+")
    x, y = torch.randn(b, 12), torch.zeros(b, dtype=torch.long)
    with monitor.record(0) as rec:
        nn.functional.cross_entropy(model(x), y).backward()
    return rec.rank.verdict


@pytest.mark.parametrize("b", [1, 2, 3])
def test_too_small_a_batch_is_inconclusive_never_collapse_or_healthy(b):
    for model in (collapsing(), nn.Sequential(nn.Linear(12, 32), nn.Sequential(Res(32), Res(32)),
                                              nn.Linear(32, 3))):
        v = monitored(model, b)
        assert v.status == "inconclusive", [f.message for f in v.findings]
        assert {f.rule for f in v.findings} == {"evidence.features"}
        text = " ".join(f.message for f in v.findings)
        assert "features.retention not applied" in text and "at least 4 samples" in text
        assert ("features.rank1 not applied" in text) == (b == 1)


def test_from_four_samples_the_collapse_is_seen():
    v = monitored(collapsing(), 4)
    assert v.status == "collapse" and "features.retention" in {f.rule for f in v.findings}


def test_two_tokens_leave_the_token_retention_rule_unapplied():
    """T = 2: each sample's centred tokens have one dimension, erank ratio 1 or 0, so a rank-one
    x_L is indistinguishable from a healthy one; T = 1: res is 0 by construction."""
    from resdiag.diagnosis.rank import diagnose_rank
    from resdiag.results import FeatureRankRow, RankSummary

    x = torch.randn(8, 2, 16, dtype=torch.float64)
    assert token_rank(x).token_erank_ratio == 1.0
    for tokens, blocked in ((1, {"tokens.res", "tokens.retention"}), (2, {"tokens.retention"}),
                            (5, {"tokens.retention"}), (6, set())):
        rows = tuple(FeatureRankRow(i, f"b{i}:in", (64, tokens, 16), 10.0, 0.9, 0.6, 0.5, 1.0, 1.0, True,
                                    tokens, 1.0, 0.9, 16) for i in range(2))
        summary = RankSummary(0.9, 0.9, 1.0, 0.6, math.nan, math.nan, math.nan)
        v = diagnose_rank(summary, (), rows, weights_measured=False)
        said = {rule for rule in ("tokens.res", "tokens.retention")
                for f in v.findings if f.rule == "evidence.tokens" and f.message.startswith(rule)}
        assert said == blocked and v.status == ("inconclusive" if blocked else "healthy")
