"""Representation-rank metrics from Gram statistics, so a probe never has to keep the features.

A probe reduces each layer's responses X (b samples x f features) on the device to small
sufficient statistics (``GramStats``), from which every metric of
``resdiag.metrics.rank.feature_rank`` follows:

- X is converted to float64 and scaled by a power of two s (exact), so that max |s X| is in
  [1/2, 1): squares neither overflow nor underflow for any finite X;
- the mean row m is removed FIRST, X_c = X - 1 m^T (after subtracting the first row, so nearly
  identical rows centre without cancellation), and the centred Gram G_c = X_c X_c^T (b x b) is
  formed from X_c. Forming G = X X^T and centring it afterwards (H G H) loses the centred part
  whenever the common mean dominates: with mean/noise = 1e4 the centred energy is 1e-8 of G's,
  at or below the rounding error of G in float32;
- the uncentred Gram is rebuilt exactly in structure: G = G_c + v 1^T + 1 v^T + |m|^2 1 1^T with
  v = X_c m, and ||X||_F^2 = tr G_c + b |m|^2 (a sum of non-negative terms, no cancellation);
- response variance (all b*f entries) = tr G_c / (b f) + var_j(m_j).

Tolerance: eigenvalues of a Gram formed in float64 carry an absolute error of about
b * eps64 * lambda_max, so eigenvalues at or below max(b, f) * eps64 * lambda_max of the SAME
matrix (centred for the centred metrics, uncentred for the rank-1 distance) are set to 0 —
numpy.linalg.matrix_rank's rule, applied to the Gram. A singular value below
sqrt(max(b, f) * eps64) * s_max (2e-6 s_max at f = 16384) is therefore dropped; at most b of them
change the effective rank by a relative b * 2e-6 at most. Definitions and sources are in
``feature_rank``; this module computes the same numbers batched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from resdiag.metrics.eigen import symmetric_eigenvalues
from resdiag.metrics.rank import FeatureRank, effective_rank, power_of_two_scale

_EPS64 = torch.finfo(torch.float64).eps


@dataclass(frozen=True)
class GramStats:
    """Sufficient statistics of one response X (b, f) for the feature metrics; tensors on X's device,
    float64, every one of them scaled by the power of two ``scale`` (X_s = scale * X)."""

    gram: Tensor  # (b, b) centred Gram X_c X_c^T
    cross: Tensor  # (b,) X_c m, m the mean row
    mean_sq: Tensor  # () |m|^2
    mean_var: Tensor  # () population variance of the f entries of m
    scale: Tensor  # () the power of two X was multiplied by
    finite: Tensor  # () bool: X had no NaN or inf entry
    features: int  # f


def gram_stats(x: Tensor) -> GramStats:
    """``GramStats`` of responses x of shape (b, *feature_dims), computed in float64 on x's device
    without a host sync. A non-finite x gives finite=False (its statistics are those of zeros).

    One float64 copy of x, worked on in place (the probe calls this inside the forward pass, on
    responses of up to b x C*H*W entries): the range and finiteness come from x itself (its max |x|
    is NaN or inf exactly when x has a NaN or inf entry), the small statistics are zeroed afterwards
    when x is not finite, instead of zeroing x."""
    flat = x.detach().reshape(x.shape[0], -1)
    amax = flat.abs().amax().to(torch.float64)
    finite = torch.isfinite(amax)
    scale = power_of_two_scale(torch.where(finite, amax, 0.0))
    work = flat.to(torch.float64, copy=True).mul_(scale)  # exact: a power of two
    first = work[0].clone()
    work.sub_(first)  # identical rows centre to an exact 0
    shift_mean = work.mean(0)
    centred = work.sub_(shift_mean)
    mean = first.add_(shift_mean)
    zero = torch.zeros((), dtype=torch.float64, device=work.device)
    gram, cross = centred @ centred.T, centred @ mean
    mean_sq = mean.square().sum()
    mean_var = mean.var(correction=0) if mean.numel() > 1 else zero
    return GramStats(
        gram=torch.where(finite, gram, zero),
        cross=torch.where(finite, cross, zero),
        mean_sq=torch.where(finite, mean_sq, zero),
        mean_var=torch.where(finite, mean_var, zero),
        scale=scale,
        finite=finite,
        features=flat.shape[1],
    )


def _floored_eigenvalues(gram: Tensor, size: Tensor) -> Tensor:
    """Eigenvalues of each symmetric (n, b, b) matrix, descending, clamped >= 0; those at or below
    size * eps64 * lambda_max (numpy's matrix_rank tolerance on the Gram) set to 0."""
    lam = symmetric_eigenvalues(gram)
    return torch.where(lam > (size * _EPS64)[:, None] * lam[:, :1], lam, 0.0)


def feature_ranks_from_gram(stats: Sequence[GramStats]) -> list[FeatureRank]:
    """``FeatureRank`` of n responses, in order, from their ``GramStats``. Responses of one batch
    size b (and device) share one batched eigendecomposition of the centred and of the uncentred
    Grams and one host sync; blocks that see other batch sizes (multi-crop, routing) form their
    own groups."""
    groups: dict[tuple, list[int]] = {}
    for i, st in enumerate(stats):
        groups.setdefault((st.gram.shape[-1], st.gram.device), []).append(i)
    out: list[FeatureRank | None] = [None] * len(stats)
    for idx in groups.values():
        for i, rank in zip(idx, _same_batch([stats[i] for i in idx]), strict=True):
            out[i] = rank
    return out  # type: ignore[return-value]


def _same_batch(stats: Sequence[GramStats]) -> list[FeatureRank]:
    """``feature_ranks_from_gram`` of responses with the same batch size b, on one device."""
    b = stats[0].gram.shape[-1]
    dev = stats[0].gram.device
    f = torch.tensor([s.features for s in stats], dtype=torch.float64, device=dev)
    ok = torch.stack([s.finite for s in stats])
    g_c = torch.stack([s.gram for s in stats])
    cross = torch.stack([s.cross for s in stats])
    mean_sq = torch.stack([s.mean_sq for s in stats])
    mean_var = torch.stack([s.mean_var for s in stats])
    scale = torch.stack([s.scale for s in stats])
    g_raw = g_c + cross[:, :, None] + cross[:, None, :] + mean_sq[:, None, None]
    size = torch.clamp(f, min=float(b))
    lam_c = _floored_eigenvalues(g_c, size)
    lam_raw = _floored_eigenvalues(g_raw, size)
    energy_c = g_c.diagonal(dim1=-2, dim2=-1).sum(-1)
    energy = energy_c + b * mean_sq
    erank = effective_rank(lam_c.sqrt())
    ceiling = torch.minimum(f, torch.tensor(float(b - 1), dtype=f.dtype, device=dev))
    rows = torch.stack(
        [
            erank,
            erank / ceiling,
            _safe_ratio(lam_raw[:, 1:].sum(-1), lam_raw.sum(-1)).sqrt(),
            _safe_ratio(energy_c, energy).sqrt(),
            (energy_c / (b * f) + mean_var).clamp_min(0).sqrt() / scale,
        ],
        dim=-1,
    )
    rows = torch.where(ok[:, None], rows, torch.nan).cpu().tolist()
    flags = ok.tolist()
    return [FeatureRank(b, s.features, *row, o) for row, s, o in zip(rows, stats, flags, strict=True)]


def _safe_ratio(num: Tensor, den: Tensor) -> Tensor:
    """num / den with 0 / 0 := 0."""
    return torch.where(den > 0, num / torch.where(den > 0, den, 1.0), 0.0)
