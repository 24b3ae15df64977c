"""Gram-based feature metrics against the direct (SVD of X) implementation and closed forms."""

import numpy as np
import pytest
import torch

from resdiag.metrics.features import feature_ranks_from_gram, gram_stats
from resdiag.metrics.rank import feature_rank


def via_gram(*xs):
    return feature_ranks_from_gram([gram_stats(x) for x in xs])


@pytest.mark.parametrize("shape", [(16, 40), (40, 16), (8, 3, 4, 4)])
def test_matches_direct_feature_rank(shape):
    torch.manual_seed(0)
    x = torch.randn(*shape, dtype=torch.float64) * 2 + 0.5
    got, want = via_gram(x)[0], feature_rank(x)
    for field in ("erank", "erank_ratio", "rank1_distance", "dong_residual", "response_std"):
        assert getattr(got, field) == pytest.approx(getattr(want, field), rel=1e-9), field


def test_matches_numpy_svd_of_centred_features():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((32, 5)) @ rng.standard_normal((5, 50))  # rank 5
    xc = x - x.mean(0)
    s = np.linalg.svd(xc, compute_uv=False)
    p = s[s > 1e-10] / s[s > 1e-10].sum()
    got = via_gram(torch.from_numpy(x))[0]
    assert got.erank == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-9)
    assert got.response_std == pytest.approx(x.std(), rel=1e-12)


def test_closed_forms():
    ones = torch.ones(10, 7, dtype=torch.float64)
    r = via_gram(ones * 3)[0]
    assert r.erank == 0 and r.rank1_distance == pytest.approx(0, abs=1e-7) and r.dong_residual == 0
    # Orthogonal, equal-norm, zero-mean rows: centred erank is b - 1 (the ceiling), ratio 1.
    q, _ = torch.linalg.qr(torch.randn(20, 8, dtype=torch.float64))
    x = (torch.eye(8, dtype=torch.float64) - 1 / 8) @ q.T  # rows: centred basis vectors
    r = via_gram(x)[0]
    assert r.erank == pytest.approx(7, rel=1e-9) and r.erank_ratio == pytest.approx(1, rel=1e-9)


def test_non_finite_is_flagged_not_raised():
    x = torch.randn(4, 6, dtype=torch.float64)
    x[1, 2] = float("inf")
    r = via_gram(x)[0]
    assert not r.finite and np.isnan(r.erank)


def test_batched_mixed_feature_sizes():
    torch.manual_seed(2)
    a, b = torch.randn(12, 30, dtype=torch.float64), torch.randn(12, 5, dtype=torch.float64)
    ra, rb = via_gram(a, b)
    assert ra.erank == pytest.approx(feature_rank(a).erank, rel=1e-9)
    assert rb.erank == pytest.approx(feature_rank(b).erank, rel=1e-9)
    assert rb.erank_ratio == pytest.approx(feature_rank(b).erank / 5, rel=1e-9)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_input_untouched_and_every_dtype_gives_the_float64_numbers(dtype):
    """gram_stats works in place on its own float64 copy: the caller's tensor (a live activation)
    is unchanged, and a narrow dtype gives exactly what the same values in float64 give."""
    torch.manual_seed(3)
    x = (torch.randn(6, 3, 5, 5) * 1e3 + 7).to(dtype)
    before = x.clone()
    got = via_gram(x)[0]
    assert torch.equal(x, before)
    want = via_gram(x.to(torch.float64))[0]
    assert got == want


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_any_non_finite_entry_flags_without_poisoning_others(bad):
    torch.manual_seed(4)
    x, clean = torch.randn(5, 9), torch.randn(5, 9)
    x[2, 3] = bad
    r, ok = via_gram(x, clean)
    assert not r.finite and all(np.isnan(getattr(r, f)) for f in ("erank", "rank1_distance", "response_std"))
    assert ok.finite and ok.erank == pytest.approx(feature_rank(clean).erank, rel=1e-9)


def test_responses_of_different_batch_sizes_are_measured_each_against_numpy():
    """Multi-crop or routed blocks see other batch sizes: each response keeps its own metrics,
    in order (the stack of every Gram raised 'stack expects each tensor to be equal size')."""
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal((b, 12)) + 0.3 for b in (8, 16, 8, 5)]
    got = via_gram(*[torch.from_numpy(x) for x in xs])
    for x, r in zip(xs, got, strict=True):
        s = np.linalg.svd(x - x.mean(0), compute_uv=False)
        p = s / s.sum()
        assert r.batch == x.shape[0]
        assert r.erank == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-9)
        assert r.erank_ratio == pytest.approx(r.erank / min(x.shape[0] - 1, 12), rel=1e-12)
        assert r.response_std == pytest.approx(x.std(), rel=1e-12)
