"""Representation-rank metrics from Gram matrices, so a probe never has to keep the features.

A probe reduces each layer's responses X (b samples x f features) to three numbers of sufficient
statistics on the device: the Gram matrix G = X X^T (b x b), the entry sum 1^T X 1, and f. Every
metric of ``resdiag.metrics.rank.feature_rank`` follows from them:

- centred Gram:   X_c = X - 1 m^T (m the mean row) gives X_c X_c^T = H G H, H = I - 1 1^T / b;
- singular values of X (or X_c) are the square roots of the eigenvalues of G (or H G H);
- ||X||_F^2 = tr G and ||X_c||_F^2 = tr(H G H);
- response std^2 = tr G / (b f) - (1^T X 1 / (b f))^2 (population variance of all entries).

Definitions and sources are in ``feature_rank``; this module computes the same numbers batched.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from resdiag.metrics.rank import FeatureRank, effective_rank


def gram_stats(x: Tensor) -> tuple[Tensor, Tensor]:
    """(G, sum) for responses x of shape (b, *feature_dims); G in float64, computed in x's dtype
    (float32 at least), so it runs at the device's matmul speed. Both stay on x's device."""
    flat = x.detach().reshape(x.shape[0], -1)
    if flat.dtype not in (torch.float32, torch.float64):
        flat = flat.float()
    gram = (flat @ flat.T).to(torch.float64)
    return gram, flat.sum(dtype=torch.float64)


def _centre(gram: Tensor) -> Tensor:
    b = gram.shape[-1]
    h = torch.eye(b, dtype=gram.dtype, device=gram.device) - 1.0 / b
    return h @ gram @ h


def _singular_from_gram(gram: Tensor, floor: Tensor) -> Tensor:
    """sqrt of the eigenvalues of G, descending; eigenvalues at or below ``floor`` are set to 0."""
    lam = torch.linalg.eigvalsh(gram).flip(-1).clamp_min(0)
    return torch.where(lam > floor[:, None], lam, 0.0).sqrt()


def feature_ranks_from_gram(
    grams: Tensor, sums: Tensor, features: Sequence[int], finite: Sequence[bool], eps: float
) -> list[FeatureRank]:
    """``FeatureRank`` of n layers from stacked Gram matrices (n, b, b), entry sums (n,) and the
    feature counts f. ``eps`` is the machine epsilon of the dtype G was formed in. One host sync."""
    b = grams.shape[-1]
    f = torch.tensor(list(features), dtype=torch.float64, device=grams.device)
    ok = torch.tensor(list(finite), device=grams.device) & grams.sum((-2, -1)).isfinite()
    grams = torch.where(ok[:, None, None], grams, 0.0)
    centred = _centre(grams)
    energy = grams.diagonal(dim1=-2, dim2=-1).sum(-1)
    # Rounding noise of forming G (and H G H) is ~ max(b, f) * eps * ||X||_F^2: anything below is 0,
    # numpy's matrix_rank tolerance applied on the scale of the uncentred X.
    floor = torch.clamp(f, min=float(b)) * eps * energy
    s_raw = _singular_from_gram(grams, floor)
    s_centred = _singular_from_gram(centred, floor)
    energy_c = centred.diagonal(dim1=-2, dim2=-1).sum(-1)
    energy_c = torch.where(energy_c > floor, energy_c, 0.0)
    erank = effective_rank(s_centred)
    mean = sums / (b * f)
    rows = torch.stack(
        [
            erank,
            erank / torch.minimum(f, torch.tensor(float(b - 1), dtype=f.dtype, device=f.device)),
            _safe_ratio(s_raw[:, 1:].square().sum(-1), energy).sqrt(),
            _safe_ratio(energy_c, energy).sqrt(),
            (energy / (b * f) - mean.square()).clamp_min(0).sqrt(),
        ],
        dim=-1,
    )
    rows = torch.where(ok[:, None], rows, torch.nan).cpu().tolist()
    flags = ok.tolist()
    return [FeatureRank(b, int(fi), *row, o) for row, fi, o in zip(rows, features, flags, strict=True)]


def _safe_ratio(num: Tensor, den: Tensor) -> Tensor:
    """num / den with 0 / 0 := 0."""
    return torch.where(den > 0, num / torch.where(den > 0, den, 1.0), 0.0)
