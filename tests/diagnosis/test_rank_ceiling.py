"""Retention under a common ceiling (resdiag/diagnosis/reach.py, ``common_retention``): x_0 and x_L
of different widths compare min(e_L, c) / min(e_0, c), c = min(c_0, c_L), against float64 numpy."""

import math

import numpy as np
import torch
from torch import nn

from resdiag.api import InputSpec, TargetSpec, run_rank
from resdiag.diagnosis.reach import common_retention, retention_blocked
from tests.diagnosis.test_rank_reach import Line


def erank_np(x):
    """Float64 reference: effective rank (Roy & Vetterli) of the centred rows of x, singular values
    at or below sqrt(max(b, f) eps64) s_max dropped (docs/rank.md's tolerance, on the Gram)."""
    s = np.linalg.svd(x - x.mean(0), compute_uv=False)
    s = s[s > math.sqrt(max(x.shape) * np.finfo(np.float64).eps) * s.max()] if s.max() > 0 else s[:0]
    p = s / s.sum()
    return math.exp(-(p * np.log(p)).sum()) if len(p) else 0.0


class Lift(nn.Module):
    """A residual block that lifts din to d (projection shortcut), as a coordinate MLP's first."""

    def __init__(self, din, d):
        super().__init__()
        self.l1, self.l2, self.proj = nn.Linear(din, d), nn.Linear(d, d), nn.Linear(din, d)

    def forward(self, x):
        return self.proj(x) + self.l2(torch.relu(self.l1(x)))


def net(*blocks):
    torch.manual_seed(0)
    model = nn.Sequential(*blocks, nn.Linear(blocks[-1].l2.out_features if hasattr(blocks[-1], "l2")
                                             else blocks[-1].u.numel(), 4))
    for b in blocks:
        b.resdiag_block = True
    return model


def measure(model, x):
    """run_rank's result, and x_0 .. x_L captured by hooks (the float64 reference's inputs)."""
    blocks = [m for m in model if getattr(m, "resdiag_block", False)]
    seen = []
    hooks = [b.register_forward_pre_hook(lambda m, a: seen.append(a[0].detach().double())) for b in blocks]
    hooks.append(blocks[-1].register_forward_hook(lambda m, a, o: seen.append(o.detach().double())))
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    batch = (x, torch.zeros(len(x), dtype=torch.long))
    res = run_rank(TargetSpec(module=model, inputs=InputSpec(kind="batch", batch=batch)), batch_size=len(x))
    return res, [t.numpy() for t in seen]


def reference(xs):
    (b, f0), (_, fl) = xs[0].shape, xs[-1].shape
    c = min(min(b - 1, f0), min(b - 1, fl))
    return min(erank_np(xs[-1]), c) / min(erank_np(xs[0]), c)


def test_a_lift_from_3_to_128_features_is_not_collapse():
    """The reported case: erank 2.99 -> ~14 read as retention 0.108 by the ratio of ratios."""
    model = net(Lift(3, 128), Lift(128, 128), Lift(128, 128))
    x = torch.randn(256, 3)
    res, xs = measure(model, x)
    assert erank_np(xs[-1]) > erank_np(xs[0])  # the rank grew
    r = res.summary.feature_erank_retention
    assert math.isclose(r, reference(xs), rel_tol=1e-9) and r > 0.99
    assert "features.retention" not in {f.rule for f in res.verdict.findings}


def test_a_collapse_with_differing_ceilings_still_fires():
    model = net(Lift(3, 128), Line(128))
    res, xs = measure(model, torch.randn(256, 3))
    r = res.summary.feature_erank_retention
    assert math.isclose(r, reference(xs), rel_tol=1e-9) and math.isclose(r, 1 / erank_np(xs[0]), rel_tol=1e-6)
    (f,) = [f for f in res.verdict.findings if f.rule == "features.retention"]
    assert f.status == "collapse" and f.value == r and "common ceiling 3" in f.message


def test_a_collapse_with_equal_ceilings_reads_the_ratio_of_ratios():
    model = net(Lift(32, 32), Line(32))
    res, xs = measure(model, torch.randn(64, 32))
    old = (erank_np(xs[-1]) / 32) / (erank_np(xs[0]) / 32)
    r = res.summary.feature_erank_retention
    rows = res.features
    assert math.isclose(r, old, rel_tol=1e-9)
    assert r == rows[-1].erank_ratio / rows[0].erank_ratio or math.isclose(
        r, rows[-1].erank_ratio / rows[0].erank_ratio, rel_tol=1e-12)
    (f,) = [f for f in res.verdict.findings if f.rule == "features.retention"]
    assert f.status == "collapse" and "erank ratio falls" in f.message


def test_common_retention_closed_form():
    assert common_retention(2.99, 3, 13.8, 128) == min(13.8, 3) / 2.99
    assert common_retention(50.0, 63, 10.0, 63) == 10.0 / 50.0  # equal ceilings: ratio of ratios
    assert common_retention(100.0, 127, 9.5, 10) == 9.5 / 10  # a bottleneck keeps its directions
    assert math.isnan(common_retention(0.0, 3, 1.0, 3))
    assert math.isnan(common_retention(math.nan, 3, 1.0, 3))


def test_reach_uses_the_common_ceiling():
    """A rank-one x_L reads 1 / min(e_0, c): it can fire only when min(e_0, c) > 1 / threshold."""
    assert retention_blocked("batch", "features.retention", (256, 3), (256, 128), 2.99, 0.5) is None
    why = retention_blocked("batch", "features.retention", (256, 2), (256, 128), 1.99, 0.5)
    assert "x_0 has 2 features" in why
    why = retention_blocked("batch", "features.retention", (256, 64), (256, 2), 50.0, 0.5)
    assert "x_L has 2 features" in why
    why = retention_blocked("batch", "features.retention", (3, 64), (3, 64), 2.0, 0.5)
    assert "a batch of 3" in why and "at least 4 samples" in why
    why = retention_blocked("batch", "features.retention", (256, 64), (256, 64), 1.8, 0.5)
    assert "too close to rank one" in why


def token_erank_np(x):
    """Batch-mean token erank of x (B, T, D), the reference's tolerance per sample."""
    return float(np.mean([erank_np(xb) for xb in x]))


class Pool(nn.Module):
    def forward(self, x):
        return x.mean(1)


def test_token_retention_uses_the_common_ceiling():
    """Tokens 4 features wide lifted to 64 (T = 16): ceilings min(15, 4) = 4 and min(15, 64) = 15.
    A linear lift keeps at most 4 token directions: the ratio of ratios (e_L / 15 over e_0 / 4)
    reads a fall where the common ceiling reads e_L / e_0."""
    torch.manual_seed(0)
    lift = nn.Linear(4, 64)
    lift.resdiag_block = True
    tail = Lift(64, 64)
    tail.resdiag_block = True
    model = nn.Sequential(lift, tail, Pool(), nn.Linear(64, 4))
    x = torch.randn(8, 16, 4)
    seen = []
    for b in (lift, tail):
        b.register_forward_pre_hook(lambda m, a: seen.append(a[0].detach().double().numpy()))
    tail.register_forward_hook(lambda m, a, o: seen.append(o.detach().double().numpy()))
    with torch.no_grad():
        model(x)
    batch = (x, torch.zeros(8, dtype=torch.long))
    res = run_rank(TargetSpec(module=model, inputs=InputSpec(kind="batch", batch=batch)), batch_size=8)
    e0, el = token_erank_np(seen[0]), token_erank_np(seen[-1])
    assert [f.tokens for f in res.features] == [16, 16, 16]
    assert math.isclose(res.features[0].token_erank_ratio, e0 / 4, rel_tol=1e-6)
    assert math.isclose(res.features[-1].token_erank_ratio, el / 15, rel_tol=1e-6)
    kept = res.summary.token_erank_retention
    assert (el / 15) / (e0 / 4) < 0.5  # the ratio of ratios: half the rank lost
    assert math.isclose(kept, min(el, 4) / min(e0, 4), rel_tol=1e-6) and kept > 0.5
    assert "tokens.retention" not in {f.rule for f in res.verdict.findings}


def test_diagnose_tokens_with_ceilings():
    from resdiag.diagnosis.tokens import diagnose_tokens

    # e_0 = 3.9 of ceiling 4, e_L = 3.5 of ceiling 15: kept 3.5 / 3.9, not (3.5 / 15) / (3.9 / 4)
    args = ([0.9, 0.8], [3.9 / 4, 3.5 / 15], ["a", "b"])
    assert (3.5 / 15) / (3.9 / 4) < 0.25
    assert diagnose_tokens(*args, ceilings=[4, 15]) == []
    assert [f.rule for f in diagnose_tokens(*args)] == ["tokens.retention"]  # no ceilings: as before
    (f,) = diagnose_tokens([0.9, 0.8], [3.9 / 4, 0.9 / 15], ["a", "b"], ceilings=[4, 15])
    assert f.rule == "tokens.retention" and math.isclose(f.value, 0.9 / 3.9)
    assert "common ceiling 4" in f.message
