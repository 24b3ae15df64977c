"""Deep networks at initialisation (marker ``slow``: `pytest -m slow`; minutes on a CPU): the
central claim of He et al. 2016 at 1024 blocks, as docs/calibration.md measured it.

A residual MLP of 1024 blocks passes the gradient back and keeps its feature rank; its plain twin
loses the feature rank (retention ~0.009 in docs/calibration.md, against a 0.5 limit)."""

import pytest

from resdiag.diagnosis.thresholds import RankThresholds
from resdiag.run.gradflow import run_grad_flow
from resdiag.run.rank import run_rank
from resdiag.run.target import TargetSpec
from resdiag.zoo import resolve

pytestmark = pytest.mark.slow


def test_residual_mlp_1024_keeps_gradient_and_rank():
    cfg = resolve("mlp", 1024)
    g = run_grad_flow(TargetSpec(arch=cfg), batches=1, batch_size=64, device="cpu")
    assert len(g.boundaries) == 1025
    assert g.verdict.status == "healthy", g.verdict.findings
    r = run_rank(TargetSpec(arch=cfg), batch_size=128, device="cpu")
    assert r.verdict.status == "healthy", r.verdict.findings


def test_plain_mlp_1024_loses_its_feature_rank():
    r = run_rank(TargetSpec(arch=resolve("plain_mlp", 1024)), batch_size=128, device="cpu")
    assert r.summary.feature_erank_retention < RankThresholds().feature_retention / 10
    assert r.verdict.status == "collapse"
    assert "features.retention" in {f.rule for f in r.verdict.findings}
