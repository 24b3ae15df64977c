"""Rank metrics against closed forms, numpy.linalg and a numpy re-implementation of WeightWatcher."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from resdiag.metrics.rank import (
    FeatureRank,
    WeightSpectrum,
    condition_number,
    effective_rank,
    feature_rank,
    feature_ranks,
    numerical_rank,
    singular_values,
    spectral_norm,
    stable_rank,
    weight_matrices,
    weight_spectra,
    weight_spectrum,
)

METHODS = ["svd", "gram"]
METRICS = ("erank", "erank_ratio", "stable_rank", "numerical_rank", "spectral_norm")


def orthogonal(n: int, gen: torch.Generator) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    return q


def with_spectrum(s: list[float], m: int, n: int, seed: int = 0) -> torch.Tensor:
    """U diag(s) V^T with random orthogonal U (m x m), V (n x n)."""
    gen = torch.Generator().manual_seed(seed)
    u, v = orthogonal(m, gen)[:, : len(s)], orthogonal(n, gen)[:, : len(s)]
    return u @ torch.diag(torch.tensor(s, dtype=torch.float64)) @ v.T


def low_rank(m: int, n: int, r: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(m, r, generator=gen, dtype=torch.float64)
    return (a @ torch.randn(r, n, generator=gen, dtype=torch.float64)).to(dtype)


def erank_by_hand(s: list[float]) -> float:
    total = sum(s)
    return math.exp(-sum(x / total * math.log(x / total) for x in s if x > 0))


def assert_same(a, b, rel: float = 1e-9) -> None:
    """Dataclasses equal field by field; floats to `rel`, NaN == NaN."""
    for field in a.__dataclass_fields__:
        x, y = getattr(a, field), getattr(b, field)
        if isinstance(x, float) and math.isnan(x):
            assert math.isnan(y), field
        elif isinstance(x, float):
            assert y == pytest.approx(x, rel=rel, abs=1e-12), field
        else:
            assert x == y, field


# --- weights -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n", [1, 4, 7])
def test_identity_has_full_rank_everywhere(n: int, method: str) -> None:
    spec = weight_spectrum(torch.eye(n), method=method)
    assert spec.erank == pytest.approx(n)
    assert spec.stable_rank == pytest.approx(n)
    assert spec.numerical_rank == n
    assert spec.erank_ratio == pytest.approx(1.0)
    assert spec.condition_number == pytest.approx(1.0)
    assert spec.finite


@pytest.mark.parametrize("method", METHODS)
def test_rank_one_matrix(method: str) -> None:
    spec = weight_spectrum(low_rank(9, 5, 1, seed=3), method=method)
    assert spec.erank == pytest.approx(1.0, abs=1e-12)
    assert spec.stable_rank == pytest.approx(1.0, abs=1e-12)
    assert spec.numerical_rank == 1
    assert spec.condition_number > 1e12


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("m", "n"), [(6, 6), (8, 5), (5, 8)])
def test_known_spectrum_gives_closed_forms(m: int, n: int, method: str) -> None:
    s = [3.0, 2.0, 0.5, 0.25, 1e-3, 0.1][: min(m, n)]
    spec = weight_spectrum(with_spectrum(s, m, n), method=method)
    assert spec.erank == pytest.approx(erank_by_hand(s), rel=1e-10)
    assert spec.erank_ratio == pytest.approx(erank_by_hand(s) / min(m, n), rel=1e-10)
    assert spec.stable_rank == pytest.approx(sum(x * x for x in s) / 9.0, rel=1e-10)
    assert spec.spectral_norm == pytest.approx(3.0, rel=1e-12)
    assert spec.condition_number == pytest.approx(3.0 / min(s), rel=1e-8)
    assert spec.numerical_rank == len(s)


def test_singular_values_descending_float64_and_match_numpy() -> None:
    a = torch.randn(4, 6, 9, dtype=torch.float32)
    s = singular_values(a)
    assert s.dtype == torch.float64 and s.shape == (4, 6)
    assert torch.all(s[:, :-1] >= s[:, 1:])
    np.testing.assert_allclose(s, np.linalg.svd(a.double().numpy(), compute_uv=False), rtol=1e-12)
    np.testing.assert_allclose(singular_values(a, "gram"), s, rtol=1e-10)


def test_functions_of_s_are_batched_and_handle_zero() -> None:
    s = torch.tensor([[2.0, 1.0, 1.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    assert effective_rank(s).tolist() == pytest.approx([erank_by_hand([2, 1, 1]), 0.0])
    assert stable_rank(s).tolist() == [1.5, 0.0]
    assert spectral_norm(s).tolist() == [2.0, 0.0]
    assert condition_number(s).tolist() == [2.0, math.inf]
    assert numerical_rank(s, (3, 3)).tolist() == [3, 0]


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(1, 12),
    n=st.integers(1, 12),
    r=st.integers(0, 12),
    seed=st.integers(0, 2**16),
    single=st.booleans(),
)
def test_numerical_rank_agrees_with_numpy_and_torch(m, n, r, seed, single) -> None:
    dtype = torch.float32 if single else torch.float64
    a = low_rank(m, n, r, seed, dtype)
    expected = int(np.linalg.matrix_rank(a.numpy()))
    assert expected == int(torch.linalg.matrix_rank(a))
    assert int(numerical_rank(singular_values(a), a.shape, dtype=a.dtype)) == expected
    for method in METHODS:
        assert weight_spectrum(a, method=method).numerical_rank == expected


def test_rtol_and_atol_follow_torch_matrix_rank() -> None:
    a = with_spectrum([1.0, 1e-3, 1e-6, 1e-12], 6, 5)
    s = singular_values(a)
    cases = [{}, {"rtol": 1e-4}, {"atol": 1e-2}, {"atol": 1e-7}, {"rtol": 1e-2, "atol": 1e-5}]
    cases += [{"rtol": 1e-9, "atol": 1e-4}, {"atol": 0.0}]
    for kw in cases:
        expected = int(torch.linalg.matrix_rank(a, **kw))
        assert int(numerical_rank(s, a.shape, **kw)) == expected, kw
        assert weight_spectrum(a, **kw).numerical_rank == expected, kw
    assert [int(numerical_rank(s, a.shape, **kw)) for kw in cases[:3]] == [4, 2, 1]


def test_default_tolerance_uses_the_original_dtype() -> None:
    s = torch.tensor([1.0, 1e-9], dtype=torch.float64)
    assert int(numerical_rank(s, (2, 2))) == 2
    assert int(numerical_rank(s, (2, 2), dtype=torch.float32)) == 1
    assert weight_spectrum(torch.diag(s).float()).numerical_rank == 1


def test_weight_matrices_shapes_and_slices() -> None:
    w = torch.randn(8, 4, 3, 2)
    assert weight_matrices(torch.randn(3, 5)).shape == (1, 3, 5)
    assert weight_matrices(w).shape == (1, 8, 24)
    assert torch.equal(weight_matrices(w)[0], w.reshape(8, -1))
    slices = weight_matrices(w, conv="slices")
    assert slices.shape == (6, 8, 4)
    for i in range(3):
        for j in range(2):
            assert torch.equal(slices[i * 2 + j], w[:, :, i, j])
    spec = weight_spectrum(w, conv="slices")
    assert (spec.num_matrices, spec.matrix_shape, spec.shape) == (6, (8, 4), (8, 4, 3, 2))


@pytest.mark.parametrize("bad", [{"conv": "fft"}, {"method": "qr"}])
def test_unknown_modes_raise(bad) -> None:
    with pytest.raises(ValueError):
        weight_spectrum(torch.randn(4, 4, 3, 3), **bad)


@pytest.mark.parametrize("shape", [(5,), (0, 3)])
def test_unusable_weight_shapes_raise(shape) -> None:
    with pytest.raises(ValueError):
        weight_matrices(torch.zeros(shape))


def weightwatcher_stable_rank(w: np.ndarray) -> float:
    """WeightWatcher 0.7 (weightwatcher/weightwatcher.py), default analyze(pool=True), numpy only.

    conv2D_Wmats: slices W[:, :, i, j], transposed when rows < cols; apply_normalize_Wmats:
    conv2d_norm scales each by sqrt(1/2); combined_eigenvalues: concatenate sv^2 of all slices;
    apply_norm_metrics: stable_rank = sum(evals) / max(evals).
    """
    mats = [w] if w.ndim == 2 else [w[:, :, i, j] for i in range(w.shape[2]) for j in range(w.shape[3])]
    evals = []
    for mat in mats:
        mat = mat.T if mat.shape[0] < mat.shape[1] else mat
        scale = math.sqrt(0.5) if w.ndim == 4 else 1.0
        evals.append(np.linalg.svd(mat.astype(float) * scale, compute_uv=False) ** 2)
    evals = np.concatenate(evals)
    return float(np.sum(evals) / np.max(evals))


@pytest.mark.parametrize("shape", [(16, 3, 3, 3), (8, 32, 3, 3), (12, 12, 1, 1), (7, 5, 2, 4), (10, 64)])
def test_slices_stable_rank_is_weightwatchers(shape) -> None:
    w = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    expected = weightwatcher_stable_rank(w.numpy())
    for method in METHODS:
        got = weight_spectrum(w, conv="slices", method=method).stable_rank
        assert got == pytest.approx(expected, rel=1e-10)


def test_weight_spectra_equals_per_layer() -> None:
    gen = torch.Generator().manual_seed(2)
    shapes = [(16, 3, 3, 3), (16, 16, 3, 3), (10, 16), (16, 16, 3, 3), (32, 16, 3, 3), (10, 16)]
    weights = [torch.randn(s, generator=gen) for s in shapes]
    weights += [weights[1].double(), low_rank(16, 144, 2, seed=5).reshape(16, 16, 3, 3)]
    weights[3][0, 0, 0, 0] = math.nan
    for conv in ("flat", "slices"):
        batched = weight_spectra(weights, conv=conv)
        assert [b.shape for b in batched] == [tuple(w.shape) for w in weights]
        for w, b in zip(weights, batched, strict=True):
            assert_same(weight_spectrum(w, conv=conv), b)
            assert_same(weight_spectrum(w, conv=conv, method="svd"), b, rel=1e-8)
    assert [b.finite for b in batched] == [True, True, True, False, True, True, True, True]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("method", METHODS)
def test_non_finite_weight_gives_nan_and_flag(bad: float, method: str) -> None:
    w = torch.randn(6, 4, 3, 3)
    w[2, 1, 0, 0] = bad
    for conv in ("flat", "slices"):
        spec = weight_spectrum(w, conv=conv, method=method)
        assert not spec.finite
        assert all(math.isnan(getattr(spec, f)) for f in METRICS + ("condition_number",))


def test_zero_weight() -> None:
    spec = weight_spectrum(torch.zeros(5, 3))
    assert (spec.erank, spec.stable_rank, spec.numerical_rank, spec.spectral_norm) == (0, 0, 0, 0)
    assert spec.condition_number == math.inf and spec.finite


def test_weightwatcher_stable_rank_per_layer() -> None:
    weightwatcher = pytest.importorskip("weightwatcher")
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3),
        nn.Conv2d(16, 32, 3),
        nn.Conv2d(32, 16, 3),
        nn.Conv2d(16, 24, 1),
        nn.Flatten(),
        nn.Linear(24, 10),
    )
    details = weightwatcher.WeightWatcher(model=model).analyze()
    modules = dict(model.named_modules())
    assert len(details) == 5
    for name, ww_rank in zip(details["longname"], details["stable_rank"], strict=True):
        ours = weight_spectrum(modules[name].weight, conv="slices").stable_rank
        assert ours == pytest.approx(float(ww_rank), rel=1e-3), name


# --- features ----------------------------------------------------------------------------


def numpy_feature_rank(x: np.ndarray) -> dict[str, float]:
    """The FeatureRank metrics by full SVD in numpy."""
    x = x.reshape(len(x), -1).astype(np.float64)
    centred = x - x.mean(axis=0)
    s_c = np.linalg.svd(centred, compute_uv=False)
    p = s_c / s_c.sum()
    p = p[p > 0]
    s = np.linalg.svd(x, compute_uv=False)
    erank = float(np.exp(-np.sum(p * np.log(p))))
    return {
        "erank": erank,
        "erank_ratio": erank / min(x.shape[0] - 1, x.shape[1]),
        "rank1_distance": float(np.sqrt(1 - s[0] ** 2 / np.sum(s**2))),
        "dong_residual": float(np.linalg.norm(centred) / np.linalg.norm(x)),
        "response_std": float(np.std(x)),
    }


@pytest.mark.parametrize(("b", "f"), [(8, 50), (50, 8), (16, 16), (2, 3)])
def test_feature_rank_matches_numpy_svd(b: int, f: int) -> None:
    x = torch.randn(b, f, generator=torch.Generator().manual_seed(b * f)) + 0.3
    got = feature_rank(x)
    assert (got.batch, got.features, got.finite) == (b, f, True)
    for name, value in numpy_feature_rank(x.numpy()).items():
        assert getattr(got, name) == pytest.approx(value, rel=1e-9), name


def test_conv_features_are_flattened_per_sample() -> None:
    x = torch.randn(6, 4, 5, 5, dtype=torch.float64)
    got = feature_rank(x)
    assert got.features == 100
    assert_same(got, feature_rank(x.reshape(6, -1)))


def test_rank_one_features() -> None:
    x = low_rank(12, 30, 1, seed=7)
    got = feature_rank(x)
    assert got.rank1_distance == 0.0
    assert got.erank == pytest.approx(1.0, abs=1e-12)


def test_equal_rows_have_zero_residual_and_rank() -> None:
    row = torch.randn(1, 20, dtype=torch.float64)
    for x in (row.repeat(9, 1), torch.full((9, 20), 0.1)):
        got = feature_rank(x)
        assert (got.dong_residual, got.erank, got.rank1_distance) == (0.0, 0.0, 0.0)
        assert got.finite


def test_zero_features_are_all_zero() -> None:
    got = feature_rank(torch.zeros(4, 3, 2, 2))
    assert (got.erank, got.erank_ratio, got.rank1_distance, got.dong_residual) == (0, 0, 0, 0)
    assert got.response_std == 0.0


def test_feature_ranks_batched_equals_single() -> None:
    xs = torch.randn(5, 10, 3, 4, generator=torch.Generator().manual_seed(4))
    xs[2, 0, 0, 0] = math.inf
    batched = feature_ranks(xs)
    for x, b in zip(xs, batched, strict=True):
        assert_same(feature_rank(x), b)
    assert [b.finite for b in batched] == [True, True, False, True, True]


def test_non_finite_features_give_nan_and_flag() -> None:
    x = torch.randn(8, 16)
    x[3, 3] = math.nan
    got = feature_rank(x)
    assert isinstance(got, FeatureRank) and not got.finite
    assert math.isnan(got.erank) and math.isnan(got.response_std)


@pytest.mark.parametrize("shape", [(1, 5), (7,), (3, 0)])
def test_unusable_feature_shapes_raise(shape) -> None:
    with pytest.raises(ValueError):
        feature_rank(torch.zeros(shape))


def test_results_are_frozen() -> None:
    spec = weight_spectrum(torch.eye(3))
    assert isinstance(spec, WeightSpectrum)
    with pytest.raises(AttributeError):
        spec.erank = 0.0  # type: ignore[misc]
