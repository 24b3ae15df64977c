"""Rank and spectrum metrics of weight matrices and of layer features. Pure functions on tensors.

Weights: a layer's weight becomes a batch of matrices (`weight_matrices`), their singular values
(`singular_values` in `resdiag.metrics.eigen`, float64) give effective, stable and numerical rank,
spectral norm and condition number (`weight_spectrum`; `weight_spectra` for a network, one batch a
shape, the shapes' eigenvalue work spread over the workers together).
Features: `feature_rank` measures how far a layer's responses X (batch x features) have
collapsed toward rank one, from the eigenvalues of a small Gram matrix.
Functions on singular values work over the last dim, so any leading batch dims are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from resdiag.metrics.eigen import SV_METHODS, singular_values  # noqa: F401  (importable from here too)
from resdiag.metrics.eigen import gram_eigenvalues, singular_values_many

CONV_MODES = ("flat", "slices")
_EPS64 = torch.finfo(torch.float64).eps


def weight_matrices(weight: Tensor, conv: str = "flat", groups: int = 1) -> Tensor:
    """The matrices (k, m, n) whose singular values describe a layer's weight.

    Linear (out, in) -> (1, out, in). Conv (out, in, *kernel), e.g. conv2d (out, in, kh, kw):
    - "flat": (1, out, in*kh*kw), the matrix that acts on im2col patches;
    - "slices": the kh*kw matrices W[:, :, i, j] (out, in), i-major, the slices WeightWatcher
      takes from a PyTorch Conv2d (CalculatedContent/WeightWatcher, weightwatcher/weightwatcher.py,
      WWLayer.conv2D_Wmats). WeightWatcher transposes a slice with out < in so that rows >= cols;
      we do not: singular values, hence every metric here, are invariant to transposition.
    ``groups`` g (grouped and depthwise convs, weight (out, in/g, *kernel)): the im2col operator is
    block-diagonal, group j's outputs seeing only group j's inputs, so its singular values are the
    union of the g blocks' (out/g) x (in/g * kh*kw): "flat" gives those g matrices, "slices" the
    g * kh*kw (out/g) x (in/g) slices, pooled like slices. The same holds for a ConvTranspose weight
    (in, out/g, *kernel), whose first dimension is grouped.
    The weight is detached; its dtype and device are kept.
    """
    if conv not in CONV_MODES:
        raise ValueError(f"unknown conv mode {conv!r}; expected one of {', '.join(CONV_MODES)}")
    if weight.ndim < 2 or weight.numel() == 0:
        raise ValueError(f"need a non-empty weight with >= 2 dims, got shape {tuple(weight.shape)}")
    w = weight.detach()
    if w.ndim == 2 and groups == 1:
        return w.unsqueeze(0)
    if groups < 1 or w.shape[0] % groups:
        raise ValueError(f"{groups} groups do not divide the first dimension of shape {tuple(w.shape)}")
    w = w.reshape(groups, w.shape[0] // groups, w.shape[1], -1)  # (g, out/g, in/g, kernel)
    if conv == "flat":
        return w.flatten(2)
    return w.permute(0, 3, 1, 2).flatten(0, 1)


def _ratio(num: Tensor, den: Tensor) -> Tensor:
    """num / den, and 0 where den == 0."""
    return torch.where(den == 0, 0.0, num / torch.where(den == 0, 1.0, den))


def effective_rank(s: Tensor) -> Tensor:
    """erank = exp(-sum_k p_k log p_k), p_k = s_k / sum_j s_j, with 0 log 0 = 0.

    Roy & Vetterli 2007, "The effective rank: a measure of effective dimensionality" (EUSIPCO).
    In [1, len(s)] for a non-zero matrix; 0 for the zero matrix (all s = 0) by our convention.
    """
    total = s.sum(-1, keepdim=True)
    p = _ratio(s, total)
    entropy = -torch.special.xlogy(p, p).sum(-1)
    return torch.where(total.squeeze(-1) == 0, 0.0, entropy.exp())


def stable_rank(s: Tensor) -> Tensor:
    """srank = ||A||_F^2 / ||A||_2^2 = sum_k s_k^2 / max_k s_k^2; 0 for the zero matrix.

    Rudelson & Vershynin 2007, "Sampling from large matrices" (J. ACM 54(4)); WeightWatcher's
    `stable_rank` is the same ratio on its pooled eigenvalues s^2 (see `weight_spectrum`).
    """
    top = s.amax(-1)
    return _ratio(s.square().sum(-1), top.square())


def numerical_rank(
    s: Tensor,
    shape: Sequence[int],
    rtol: float | None = None,
    atol: float | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Number of s_k > tol, tol = max(atol, rtol * s_max): torch.linalg.matrix_rank's rule.

    shape: the matrix's shape (its last two entries m, n are used). Defaults as in PyTorch and
    numpy.linalg.matrix_rank: rtol = max(m, n) * eps, eps of `dtype`, the dtype of the ORIGINAL
    matrix (pass it: s is float64 even for a float32 weight; None means s.dtype); if atol > 0 is
    given without rtol, rtol = 0. That tolerance models an SVD computed in the matrix's dtype; a
    half-precision matrix (bfloat16, float16) is exact in float32, and max(m, n) * eps_bf16 reaches
    1 at 128 (every singular value "zero"), so its default is float32's: the rank of
    torch.linalg.matrix_rank(W.float()). A NaN s_k is not counted: check finiteness first.
    """
    if rtol is None:
        kind = dtype or s.dtype
        eps = torch.finfo(torch.float32 if kind.itemsize < 4 else kind).eps  # half types: as float32
        rtol = max(shape[-2:]) * eps if atol is None or atol <= 0 else 0.0
    tol = (s.amax(-1, keepdim=True) * rtol).clamp(min=atol or 0.0)
    return (s > tol).sum(-1)


def spectral_norm(s: Tensor) -> Tensor:
    """||A||_2 = max_k s_k."""
    return s.amax(-1)


def condition_number(s: Tensor) -> Tensor:
    """kappa = s_max / s_min over all min(m, n) singular values; inf when s_min == 0."""
    low = s.amin(-1)
    return torch.where(low == 0, torch.inf, s.amax(-1) / low)


@dataclass(frozen=True)
class WeightSpectrum:
    """Spectrum summary of one layer's weight; metrics are NaN when `finite` is False.

    With conv="slices" the k slices' singular values are pooled into one spectrum of k*min(m, n)
    values, as WeightWatcher pools a Conv2d's eigenvalues s^2 into one ESD; every metric is taken
    on that pooled spectrum, so `stable_rank` is WeightWatcher's `stable_rank` column.
    """

    shape: tuple[int, ...]  # the weight tensor's shape as given
    conv: str  # how a conv kernel became matrices: "flat" or "slices"
    num_matrices: int  # k: 1 for a linear weight or conv="flat", kh*kw for "slices"; times groups
    matrix_shape: tuple[int, int]  # (m, n) of each matrix
    erank: float  # effective rank of the pooled spectrum
    erank_ratio: float  # erank / (k * min(m, n)): 1 = flat spectrum, 1/(k min(m, n)) = rank one
    stable_rank: float  # sum s^2 / max s^2 over the pooled spectrum
    numerical_rank: float  # an integer: pooled s > max(atol, rtol * max s); rtol from max(m, n)
    spectral_norm: float  # max s (WeightWatcher's `spectral_norm` column is max s^2, rescaled)
    condition_number: float  # max s / min s over the pooled spectrum; inf if min s == 0
    finite: bool  # False when the weight has a NaN or inf entry


def _pooled_metrics(s: Tensor, mn: tuple[int, int], dtype: torch.dtype, rtol, atol) -> Tensor:
    """(W, 7) float64 rows: the WeightSpectrum metrics in field order, then finite (1/0)."""
    finite = torch.isfinite(s).all(-1)
    rows = torch.stack(
        [
            effective_rank(s),
            effective_rank(s) / s.shape[-1],
            stable_rank(s),
            numerical_rank(s, mn, rtol, atol, dtype).to(torch.float64),
            spectral_norm(s),
            condition_number(s),
        ],
        dim=-1,
    )
    rows = torch.where(finite[:, None], rows, torch.nan)
    return torch.cat([rows, finite[:, None].to(torch.float64)], dim=-1)


def weight_spectra(
    weights: Sequence[Tensor],
    conv: str = "flat",
    rtol: float | None = None,
    atol: float | None = None,
    method: str = "gram",
    groups: Sequence[int] | None = None,
) -> list[WeightSpectrum]:
    """`weight_spectrum` of each weight, in order, with one batched call per distinct matrix shape.
    ``groups``: each conv's groups (`weight_matrices`); None: 1 for every weight.

    Weights are grouped by (k, m, n), dtype and device, one float64 batch each (a CIFAR ResNet-1202
    makes 7 groups, not 1202; a few device syncs a group, none per layer). Consecutive groups up
    to 256 MiB of float64 in all share one `singular_values_many` call, so that a shape with few
    matrices does not leave a worker idle (ResNet-18's 12 shapes on 2 cores: 0.24 s to 0.17 s);
    the memory held is that, or the largest group, as with one group at a time.
    """
    mats = [weight_matrices(w, conv, g) for w, g in zip(weights, groups or [1] * len(weights), strict=True)]
    groups: dict[tuple, list[int]] = {}
    for i, m in enumerate(mats):
        groups.setdefault((tuple(m.shape), m.dtype, m.device), []).append(i)
    result: list[WeightSpectrum | None] = [None] * len(mats)
    pending: list[tuple[tuple, list[int], Tensor]] = []

    def flush() -> None:
        values = singular_values_many([batch for *_, batch in pending], method)
        for ((kmn, dtype, _), idx, _), s in zip(pending, values, strict=True):
            rows = _pooled_metrics(s.flatten(-2), kmn[1:], dtype, rtol, atol).tolist()
            for i, (*metrics, finite) in zip(idx, rows, strict=True):  # metrics in field order
                result[i] = WeightSpectrum(tuple(weights[i].shape), conv, kmn[0], kmn[1:], *metrics,
                                           finite == 1.0)
        pending.clear()

    for key, idx in groups.items():
        entries = len(idx) * key[0][0] * key[0][1] * key[0][2]
        if pending and sum(b.numel() for *_, b in pending) + entries > _GROUPED_ENTRIES:
            flush()  # before the next batch exists: at most the bound, or one group, held at once
        batch = torch.empty((len(idx), *key[0]), dtype=torch.float64, device=key[2])
        for row, i in zip(batch, idx):  # copy_ converts 2.5x faster than torch.stack(out=) on a CPU
            row.copy_(mats[i])
        pending.append((key, idx, batch))
    flush()
    return result  # type: ignore[return-value]


_GROUPED_ENTRIES = 32 << 20  # float64 entries of the groups whose spectra are taken together: 256 MiB


def weight_spectrum(
    weight: Tensor,
    conv: str = "flat",
    rtol: float | None = None,
    atol: float | None = None,
    method: str = "gram",
) -> WeightSpectrum:
    """Effective, stable and numerical rank, spectral norm and condition number of one weight.

    Linear and conv="flat": the metrics of the single matrix (numerical_rank equals
    torch.linalg.matrix_rank(weight matrix, rtol=rtol, atol=atol)). conv="slices": pooled over
    the kh*kw slices as described in WeightSpectrum; stable_rank then reproduces WeightWatcher
    0.7's per-layer `stable_rank` (analyze(), default pool=True; its conv2d_norm rescaling of the
    slices cancels in the ratio). Non-finite weights give NaN metrics and finite=False.
    method: how singular values are computed, see `singular_values` ("svd" for LAPACK throughout).
    """
    return weight_spectra([weight], conv, rtol, atol, method)[0]


@dataclass(frozen=True)
class FeatureRank:
    """How collapsed a layer's responses X (batch x features) are; NaN when `finite` is False."""

    batch: int  # b, number of samples (rows of X)
    features: int  # f, features per sample (a conv map's C*H*W, flattened)
    erank: float  # effective rank of the centred X (column means removed)
    erank_ratio: float  # erank / min(b - 1, f): centring leaves at most b - 1 dimensions
    rank1_distance: float  # ||X - X_1||_F / ||X||_F, X_1 the best rank-1 approximation of X
    dong_residual: float  # ||X - 1 mean(X)^T||_F / ||X||_F (Dong et al. 2021, res(X))
    response_std: float  # population std of all b*f entries (He et al. 2015, Fig. 7)
    finite: bool  # False when X has a NaN or inf entry


def _feature_singular_values(x: Tensor) -> Tensor:
    """Singular values (n, min(b, f)) of x (n, b, f), descending, from eigvalsh of the smaller Gram.

    Eigenvalues at or below max(b, f) * eps * lambda_max (numpy's matrix_rank tolerance applied
    to the Gram) are rounding noise from forming it and are set to 0: an exactly low-rank X keeps
    its rank; true singular values below ~sqrt(max(b, f) * eps) * s_max (1e-7 s_max) are lost.
    """
    lam = gram_eigenvalues(x)
    floor = max(x.shape[-2:]) * _EPS64 * lam[..., :1]
    return torch.where(lam > floor, lam, 0.0).sqrt()


def feature_ranks(xs: Tensor) -> list[FeatureRank]:
    """`feature_rank` of each X in a stack xs (n, batch, *feature_dims), with batched eigvalsh."""
    if xs.ndim < 3 or xs.shape[1] < 2 or xs[0, 0].numel() == 0:
        raise ValueError(f"need X of shape (batch >= 2, features >= 1), got {tuple(xs.shape[1:])}")
    x = xs.detach().reshape(xs.shape[0], xs.shape[1], -1).to(torch.float64)
    b, f = x.shape[-2:]
    finite = x.isfinite().all(-1).all(-1)
    x = torch.where(finite[:, None, None], x, 0.0)
    scale = power_of_two_scale(x.abs().amax((-2, -1)))  # exact; no square over- or underflows
    x = x * scale[:, None, None]
    shifted = x - x[:, :1]  # identical rows centre to an exact 0; less cancellation in the mean
    centred = shifted - shifted.mean(dim=1, keepdim=True)
    s_centred, s_raw = _feature_singular_values(centred), _feature_singular_values(x)
    energy = s_raw.square().sum(-1)
    erank = effective_rank(s_centred)
    rows = torch.stack(
        [
            erank,
            erank / min(b - 1, f),
            _ratio(s_raw[:, 1:].square().sum(-1), energy).sqrt(),
            _ratio(centred.square().sum((-2, -1)), x.square().sum((-2, -1))).sqrt(),
            x.std(dim=(-2, -1), correction=0) / scale,
        ],
        dim=-1,
    )
    rows = torch.where(finite[:, None], rows, torch.nan).tolist()
    return [FeatureRank(b, f, *row, ok) for row, ok in zip(rows, finite.tolist(), strict=True)]


def power_of_two_scale(amax: Tensor) -> Tensor:
    """2^-e with amax = m 2^e, m in [1/2, 1): multiplying by it is exact; 1 where amax is 0."""
    mantissa, exponent = torch.frexp(amax)
    return torch.where(mantissa > 0, torch.ldexp(torch.ones_like(mantissa), -exponent), 1.0)


def feature_rank(x: Tensor) -> FeatureRank:
    """Rank-collapse metrics of one layer's responses X (batch, *feature_dims), one row a sample.

    - erank: effective rank (Roy & Vetterli 2007) of the centred X, X - 1 mean(X)^T;
      erank_ratio = erank / min(b - 1, f), since centring removes one dimension, so 1 is reachable.
    - rank1_distance = ||X - X_1||_F / ||X||_F = sqrt(sum_{k>=2} s_k^2 / sum_k s_k^2) with s the
      singular values of the uncentred X (Eckart-Young).
    - dong_residual = ||X - 1 x^T||_F / ||X||_F, x the mean row: res(X) of Dong, Cordonnier &
      Loukas 2021, "Attention is not all you need: pure attention loses rank doubly
      exponentially with depth" (ICML), normalised by ||X||_F.
    - response_std: std of all entries (population), as He et al. 2015 ("Deep residual
      learning", Fig. 7) plot per layer.
    Singular values come from eigvalsh of the smaller Gram (b x b or f x f) of the centred X (for
    the centred metrics) or of X (for rank1_distance), in float64 after an exact power-of-two
    scaling, with numpy's matrix_rank tolerance on each Gram: one small eigenproblem per layer.
    Conventions: zero X gives 0 for every metric (0/0 := 0); X with all rows equal gives erank 0,
    dong_residual 0 and rank1_distance 0. NaN only for non-finite X.
    Raises ValueError for fewer than 2 samples (centring would leave nothing).
    """
    return feature_ranks(x.unsqueeze(0))[0]
