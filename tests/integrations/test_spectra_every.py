"""``Monitor(features=True, spectra_every=K)``: the weight spectra on every K-th recording (the first
included), the feature ranks on all; a recording without spectra says so (``weights_measured``) and
its verdict neither applies the weight rule nor calls the missing weights missing evidence."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from resdiag.api import Monitor
from resdiag.diagnosis.rank import diagnose_rank
from resdiag.results import RankResult
from tests.integrations.problems import ResNetMLP, batch


def _recordings(k: int, n: int):
    torch.manual_seed(0)
    model = ResNetMLP(width=16, depth=3)
    monitor = Monitor(model, every=1, features=True, spectra_every=k, blocks=r"blocks\.\d+$")
    x, y = batch(16)
    for step in range(n):
        with monitor.record(step):
            nn.functional.cross_entropy(model(x), y).backward()
        model.zero_grad(set_to_none=True)
    return monitor.history


def test_spectra_on_every_kth_recording_features_on_all():
    recs = _recordings(3, 5)
    measured = [r.rank.weights_measured for r in recs]
    assert measured == [True, False, False, True, False]
    n_layers = len(recs[0].rank.weights)
    assert n_layers == 8  # stem, 2 per block x 3, head
    for r, m in zip(recs, measured, strict=True):
        assert len(r.rank.weights) == (n_layers if m else 0)
        assert len(r.rank.features) == 4
        assert r.rank.verdict.status == "healthy", r.rank.verdict
        assert not any(f.rule.startswith("evidence") for f in r.rank.verdict.findings)
    # same weights, same batch: the features of every recording agree
    assert [f.erank for f in recs[1].rank.features] == pytest.approx([f.erank for f in recs[0].rank.features])


def test_default_takes_spectra_every_time():
    assert all(r.rank.weights_measured and r.rank.weights for r in _recordings(1, 2))


def test_weights_measured_survives_json():
    rec = _recordings(2, 2)[1]
    back = RankResult.from_dict(rec.rank.to_dict())
    assert back.weights_measured is False and back.weights == ()
    assert rec.to_dict()["rank"]["weights_measured"] is False


def test_missing_weights_are_missing_evidence_only_when_asked_for():
    rank = _recordings(1, 1)[0].rank
    asked = diagnose_rank(rank.summary, (), rank.features)
    not_asked = diagnose_rank(rank.summary, (), rank.features, weights_measured=False)
    assert [f.rule for f in asked.findings] == ["evidence.weights"] and asked.status == "inconclusive"
    assert not_asked.findings == () and not_asked.status == "healthy"


def test_spectra_every_must_be_positive():
    with pytest.raises(ValueError, match="spectra_every"):
        Monitor(nn.Linear(2, 2), spectra_every=0)
