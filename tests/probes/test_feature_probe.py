"""The feature probe against metrics computed directly on features captured by hand."""

import pytest
import torch

from resdiag.metrics.rank import feature_rank
from resdiag.metrics.tokens import token_rank
from resdiag.probes.features import FeatureProbe
from resdiag.probes.layers import find_blocks
from resdiag.zoo import build
from tests.support import ALL_SMALL


@pytest.mark.parametrize("cfg", ALL_SMALL[::3], ids=lambda c: c.name)
def test_probe_matches_direct_metrics(cfg):
    torch.manual_seed(0)
    model = build(cfg).double().eval()
    x = torch.randn(12, *cfg.input_shape, dtype=torch.float64)
    blocks = [m for _, m in find_blocks(model)]
    captured, branch_out = [], []
    handles = [b.register_forward_pre_hook(lambda m, a: captured.append(a[0])) for b in blocks]
    handles.append(blocks[-1].register_forward_hook(lambda m, a, out: captured.append(out)))
    handles += [b.branch.register_forward_hook(lambda m, a, out: branch_out.append(out))
                for b in blocks if hasattr(b, "branch")]
    with torch.no_grad(), FeatureProbe(model) as probe:
        model(x)
        probe.collect()
    for h in handles:
        h.remove()
    assert len(probe.boundaries) == len(captured) == len(blocks) + 1
    for (_name, shape, got), feats in zip(probe.boundaries, captured, strict=True):
        want = feature_rank(feats)
        assert shape == tuple(feats.shape)
        assert got.erank == pytest.approx(want.erank, rel=1e-7)
        assert got.rank1_distance == pytest.approx(want.rank1_distance, rel=1e-7, abs=1e-12)
        assert got.response_std == pytest.approx(want.response_std, rel=1e-9)
    tokens = [t for t in captured if t.ndim == 3]
    assert len(probe.tokens) == len(tokens) == (len(captured) if cfg.family == "transformer" else 0)
    for (_, _, got), feats in zip(probe.tokens, tokens, strict=True):
        assert got.token_res == pytest.approx(token_rank(feats).token_res, rel=1e-12)
        assert got.token_erank == pytest.approx(token_rank(feats).token_erank, rel=1e-12)
    for (_, std), out in zip(probe.branches, branch_out, strict=True):
        assert std == pytest.approx(float(out.std(correction=0)), rel=1e-9)
    assert not any(m._forward_pre_hooks or m._forward_hooks for m in model.modules())
