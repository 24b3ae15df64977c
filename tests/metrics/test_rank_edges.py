"""Edges of resdiag/metrics/rank.py: the pooled "slices" spectrum against a numpy transcription of
WeightWatcher's per-layer stable rank (so the comparison runs where weightwatcher is not installed),
and the shape error of feature_ranks."""

import numpy as np
import pytest
import torch

from resdiag.metrics.rank import feature_ranks, singular_values, stable_rank, weight_spectrum


def weightwatcher_stable_rank(w: np.ndarray) -> float:
    """WeightWatcher 0.7's per-layer stable rank of a Conv2d (analyze(), pool=True): the eigenvalues
    s^2 of every kh x kw slice W[:, :, i, j] pooled into one spectrum, sum / max."""
    evals = np.concatenate([np.linalg.svd(w[:, :, i, j], compute_uv=False) ** 2
                            for i in range(w.shape[2]) for j in range(w.shape[3])])
    return float(evals.sum() / evals.max())


@pytest.mark.parametrize("shape", [(16, 3, 3, 3), (8, 16, 1, 1), (4, 32, 3, 2)])
def test_slices_stable_rank_is_weightwatchers(shape):
    w = torch.randn(*shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    w[:, :, 0, 0] *= 5.0  # one dominant slice: the pooled max is not every slice's max
    spec = weight_spectrum(w, conv="slices")
    assert spec.stable_rank == pytest.approx(weightwatcher_stable_rank(w.numpy()), rel=1e-10)
    assert spec.num_matrices == shape[2] * shape[3]


@pytest.mark.parametrize("shape", [(3, 1, 4), (3, 2, 0), (5,), (2, 4)])
def test_feature_ranks_refuses_a_shape_and_says_which(shape):
    with pytest.raises(ValueError, match=r"need X of shape \(batch >= 2, features >= 1\), got " +
                       repr(tuple(shape[1:])).replace("(", r"\(").replace(")", r"\)")):
        feature_ranks(torch.ones(shape))


def test_singular_values_refuses_an_unknown_method_and_lists_the_known():
    with pytest.raises(ValueError, match=r"^unknown method 'qr'; expected one of svd, gram$"):
        singular_values(torch.eye(2), method="qr")


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4)])
def test_stable_rank_works_over_the_last_dim_of_any_batch(shape):
    s = torch.rand(shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.1
    want = (s.square().sum(-1) / s.amax(-1).square()).numpy()
    assert np.allclose(stable_rank(s).numpy(), want, rtol=1e-12)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_weights_keep_their_numerical_rank(dtype):
    """A full-rank 256 x 256 bfloat16 weight: the default rtol max(m, n) eps_bf16 = 2 counted no
    singular value. Half values are exact in float32: the default is numpy's matrix_rank of them."""
    import numpy as np

    w = torch.randn(256, 256, generator=torch.Generator().manual_seed(0)).to(dtype)
    low = (torch.randn(256, 8) @ torch.randn(8, 256)).to(dtype)  # rank 8, up to half rounding
    for mat in (w, low):
        want = np.linalg.matrix_rank(mat.float().numpy())  # float32: rtol = 256 * eps32
        assert weight_spectrum(mat).numerical_rank == want
    assert weight_spectrum(w).numerical_rank == 256


@pytest.mark.parametrize("groups, cin, cout", [(4, 8, 8), (8, 8, 8), (2, 4, 6)])  # grouped, depthwise
def test_grouped_conv_is_the_block_diagonal_operator(groups, cin, cout):
    """The im2col operator of a grouped conv, built densely (zeros across groups), against numpy:
    its singular values are the union of the groups' blocks (reshaping to out x (in/g * k) mixed
    the groups' rows into one matrix and read a false collapse)."""
    from torch import nn

    from resdiag.metrics.rank import weight_spectra

    torch.manual_seed(0)
    w = nn.Conv2d(cin, cout, 3, groups=groups).weight.detach().double()
    dense = np.zeros((cout, cin, 9))
    og, ig = cout // groups, cin // groups
    for j in range(groups):
        dense[j * og:(j + 1) * og, j * ig:(j + 1) * ig] = w[j * og:(j + 1) * og].reshape(og, ig, 9).numpy()
    s = np.linalg.svd(dense.reshape(cout, -1), compute_uv=False)[: min(og, ig * 9) * groups]
    p = s / s.sum()
    (got,) = weight_spectra([w], groups=[groups])
    assert got.num_matrices == groups and got.matrix_shape == (og, ig * 9)
    assert got.erank == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-10)
    assert got.erank_ratio == pytest.approx(got.erank / len(s), rel=1e-12)
    assert got.spectral_norm == pytest.approx(s[0], rel=1e-12)
    assert got.stable_rank == pytest.approx((s**2).sum() / s[0] ** 2, rel=1e-10)
    assert got.erank_ratio > 0.5  # a random grouped conv is not collapsed
    (sl,) = weight_spectra([w], conv="slices", groups=[groups])
    want = np.concatenate([np.linalg.svd(w[j * og:(j + 1) * og, :, a, b].numpy(), compute_uv=False)
                           for j in range(groups) for a in range(3) for b in range(3)])
    assert sl.num_matrices == groups * 9
    assert sl.stable_rank == pytest.approx((want**2).sum() / (want**2).max(), rel=1e-10)


@pytest.mark.parametrize("scale", [1e-170, 1e-300, 1e170, 1e300])
@pytest.mark.parametrize("method", ["gram", "svd"])
def test_float64_weights_at_extreme_scales(scale, method):
    """The Gram of a float64 weight at 1e-170 underflowed (erank 0: a false collapse) and at 1e170
    overflowed (LinAlgError): every matrix is scaled by a power of two first, as the features are."""
    w = torch.randn(24, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    s = np.linalg.svd(w.numpy(), compute_uv=False)
    got = weight_spectrum(w * scale, method=method)
    unit = weight_spectrum(w, method=method)
    assert got.finite and got.numerical_rank == 16
    assert got.erank == pytest.approx(unit.erank, rel=1e-12)
    assert got.spectral_norm == pytest.approx(s[0] * scale, rel=1e-12)
    assert got.condition_number == pytest.approx(s[0] / s[-1], rel=1e-9)
