"""Edges of resdiag/metrics/features.py: the Gram route reports each layer's own batch and feature
count, and agrees with the direct route (feature_rank on X) layer by layer."""

import pytest
import torch

from resdiag.metrics.features import feature_ranks_from_gram, gram_stats
from resdiag.metrics.rank import feature_rank


def test_each_layer_keeps_its_shape_and_matches_the_direct_metrics():
    gen = torch.Generator().manual_seed(2)
    xs = [torch.randn(6, f, generator=gen, dtype=torch.float64) for f in (3, 10, 1)]
    got = feature_ranks_from_gram([gram_stats(x) for x in xs])
    assert [(r.batch, r.features) for r in got] == [(6, 3), (6, 10), (6, 1)]
    for r, x in zip(got, xs, strict=True):
        want = feature_rank(x)
        for field in ("erank", "erank_ratio", "rank1_distance", "dong_residual", "response_std"):
            assert getattr(r, field) == pytest.approx(getattr(want, field), rel=1e-9, abs=1e-12), field
