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
