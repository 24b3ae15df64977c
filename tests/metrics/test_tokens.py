"""Token-level rank (resdiag/metrics/tokens.py) against float64 numpy SVD and closed forms."""

import numpy as np
import pytest
import torch

from resdiag.metrics.tokens import token_rank, token_stats


def _numpy(x: np.ndarray, eps: float):
    """Per sample (erank, erank ratio, res) by SVD of the centred tokens, in float64."""
    out = []
    for xb in x.astype(np.float64):
        t, d = xb.shape
        c = xb - xb.mean(0, keepdims=True)
        s = np.linalg.svd(c, compute_uv=False)
        tol = max(4 * eps * np.linalg.norm(xb), np.sqrt(max(t, d) * np.finfo(float).eps) * s[0])
        s = np.where(s > tol, s, 0.0)
        p = s / s.sum() if s.sum() > 0 else s
        nz = p[p > 0]
        erank = float(np.exp(-(nz * np.log(nz)).sum())) if s.sum() > 0 else 0.0
        norm = np.linalg.norm(xb)
        res = np.linalg.norm(c) / norm if norm > 0 else 0.0
        out.append((erank, erank / min(t - 1, d), res))
    return np.array(out)


@pytest.mark.parametrize("shape", [(3, 5, 8), (2, 9, 4), (4, 6, 6)])  # T < D, T > D, T = D
def test_matches_numpy_svd(shape):
    x = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x[0] = x[0] * 1e3 + 5.0  # scale and a common offset do not matter
    got = token_stats(x).numpy()
    np.testing.assert_allclose(got, _numpy(x.numpy(), np.finfo(np.float64).eps), rtol=1e-10, atol=1e-12)


def test_low_rank_tokens_have_their_rank():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(2, 16, 2, generator=g, dtype=torch.float64), torch.randn(2, 2, 32, generator=g,
                                                                           dtype=torch.float64)
    x = a @ b  # rank 2, and rank <= 2 after centring
    got = token_stats(x)
    np.testing.assert_allclose(got.numpy(), _numpy(x.numpy(), np.finfo(np.float64).eps), rtol=1e-9)
    assert (got[:, 0] <= 2 + 1e-9).all()


def test_identical_tokens_are_fully_collapsed():
    row = torch.randn(1, 1, 12)
    x = row.expand(3, 7, 12).clone()
    r = token_rank(x)
    assert r.token_res == 0.0 and r.token_erank == 0.0 and r.finite


def test_tokens_equal_up_to_float32_rounding_have_erank_zero_but_show_their_res():
    g = torch.Generator().manual_seed(2)
    row = torch.randn(1, 1, 64, generator=g)
    x = row + 1e-7 * torch.randn(4, 16, 64, generator=g) * row.abs()
    r = token_rank(x.float())
    assert r.token_erank == 0.0
    assert 1e-9 < r.token_res < 1e-6  # Dong et al.'s res is reported, not floored
    assert token_rank(x.double()).token_erank > 1  # in float64 those differences are real


def test_orthogonal_tokens_closed_form():
    # T one-hot tokens in D = T dims: centred, rank T - 1 with equal singular values.
    t = 5
    x = torch.eye(t, dtype=torch.float64)[None]
    r = token_rank(x)
    assert r.token_erank == pytest.approx(t - 1) and r.token_erank_ratio == pytest.approx(1.0)
    assert r.token_res == pytest.approx(np.sqrt(1 - 1 / t))  # ||I - 11^T/t||_F / ||I||_F


def test_zero_and_non_finite_samples():
    x = torch.zeros(2, 4, 3)
    x[1, 0, 0] = float("nan")
    stats = token_stats(x)
    assert stats[0].tolist() == [0.0, 0.0, 0.0]
    assert torch.isnan(stats[1]).all()
    assert not token_rank(x).finite


def test_huge_values_do_not_overflow():
    x = torch.randn(2, 4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) * 1e200
    assert torch.isfinite(token_stats(x)).all()


def test_needs_three_dims():
    with pytest.raises(ValueError):
        token_stats(torch.randn(4, 3))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_tokens_keep_their_rank(dtype):
    """bfloat16 tokens of width 256: the floor max(T, D) eps ||X||_F was >= ||X||_F (erank 0 for
    every sample); the tokens' own rounding is a few eps ||X_b||_F whatever D is. Against a float64
    SVD of the same (exact) half values, with the documented floor 4 eps ||X_b||_F."""
    g = torch.Generator().manual_seed(4)
    x = (torch.randn(3, 32, 256, generator=g) + 2.0).to(dtype)
    eps = torch.finfo(dtype).eps
    got = token_stats(x).numpy()
    want = _numpy(x.double().numpy(), eps)
    np.testing.assert_allclose(got, want, rtol=1e-9)
    assert (got[:, 1] > 0.9).all()  # i.i.d. tokens: near-full token rank, in any precision
    unfloored = _numpy(x.double().numpy(), 0.0)
    np.testing.assert_allclose(got[:, 1], unfloored[:, 1], rtol=1e-12)  # no real direction dropped


def test_half_precision_tokens_equal_up_to_rounding_are_collapsed():
    g = torch.Generator().manual_seed(5)
    row = torch.randn(1, 1, 256, generator=g)
    x = (row + torch.finfo(torch.bfloat16).eps * torch.randn(2, 16, 256, generator=g) * row.abs())
    r = token_rank(x.to(torch.bfloat16))
    assert r.token_erank == 0.0 and 0 < r.token_res < 0.02
