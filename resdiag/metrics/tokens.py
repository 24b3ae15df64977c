"""Token-level rank of sequence features: how far the T tokens of one sample have collapsed.

For a boundary x_l of shape (B, T, D) (batch, tokens, features), each sample's tokens form a
matrix X_b (T x D). Dong, Cordonnier & Loukas 2021, "Attention is not all you need: pure attention
loses rank doubly exponentially with depth" (ICML), measure collapse by res(X) = X - 1 x^T, the
distance of X to the matrices whose rows (tokens) are all equal; over x the Frobenius norm is least
at the token mean x = mean_t X[t]. With the same normalisation as the across-sample
``dong_residual`` of docs/rank.md (there the rows are samples, here tokens), per sample:

    token_res(X_b)         = ||X_b - 1 xbar_b^T||_F / ||X_b||_F     (0 for X_b = 0)
    token_erank(X_b)       = erank(X_b - 1 xbar_b^T)                 (Roy & Vetterli 2007)
    token_erank_ratio(X_b) = token_erank / min(T - 1, D)             (centring removes one dim)

and each is averaged over the B samples. Two errors are floored, each where it arises:

- the tokens' own rounding, in the dtype the network computed them in: each entry is off by at most
  a few units of roundoff, so (Weyl) every singular value by at most a few eps * ||X_b||_F,
  whatever T and D are. Singular values of the centred X_b at or below
  ROUNDING * eps * ||X_b||_F (ROUNDING = 4; eps of x's dtype) count as 0: tokens equal up to that
  rounding have erank 0, not the erank of their noise. (Residual-free float32 transformers and ViTs
  of depth 6-24, whose tokens are equal up to rounding, have top centred singular values of at most
  1.1 eps * ||X_b||_F.) resdiag 0.1 floored at max(T, D) * eps * ||X_b||_F, numpy's matrix_rank
  tolerance, which models an SVD computed in that dtype: at D * eps >= 1 (bfloat16 from D = 128)
  it exceeded every singular value and read erank 0 for healthy tokens;
- our own arithmetic, on those values made exact in float64: eigenvalues of the float64 Gram at or
  below max(T, D) * eps64 * lambda_max (its rounding; the rule of resdiag/metrics/features.py).

``token_res`` is not floored, so it shows how close to equal the tokens are (about eps when they
are equal up to rounding).
docs/tokens.md has the rule built on these numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from resdiag.metrics.eigen import symmetric_eigenvalues
from resdiag.metrics.rank import effective_rank

_EPS64 = torch.finfo(torch.float64).eps
ROUNDING = 4.0  # units of eps a token's entries may be off by from the network's rounding (above)


@dataclass(frozen=True)
class TokenRank:
    """Token-level rank of one (B, T, D) boundary, averaged over its B samples."""

    tokens: int  # T
    features: int  # D
    token_erank: float  # mean over samples of erank(X_b - 1 xbar_b^T)
    token_erank_ratio: float  # mean over samples of token_erank / min(T - 1, D)
    token_res: float  # mean over samples of ||X_b - 1 xbar_b^T||_F / ||X_b||_F (Dong et al. 2021)
    finite: bool  # False when x has a NaN or inf entry (the numbers are then NaN)


def token_stats(x: Tensor, eps: float | None = None) -> Tensor:
    """Per-sample (token_erank, token_erank_ratio, token_res) of x (B, T, D): a (B, 3) float64
    tensor on x's device, NaN rows for samples with a non-finite entry. No host sync.

    ``eps``: the machine epsilon of the precision x was computed in (default: x's dtype, float32
    at most precise for half types)."""
    if x.ndim != 3:
        raise ValueError(f"token ranks need (batch, tokens, features), got shape {tuple(x.shape)}")
    if eps is None:
        eps = torch.finfo(x.dtype if x.dtype.is_floating_point else torch.float32).eps
    b, t, d = x.shape
    xs = x.detach().to(torch.float64)
    finite = xs.isfinite().flatten(1).all(-1)
    xs = torch.where(finite[:, None, None], xs, 0.0)
    # Each sample times a power of two (exact) bringing max |x| into [1/2, 1): no square overflows
    # or underflows; every metric here is scale-invariant.
    _, exponent = torch.frexp(xs.abs().flatten(1).amax(-1))
    xs = torch.ldexp(xs, -exponent[:, None, None])
    centred = xs - xs.mean(1, keepdim=True)
    energy = xs.square().sum((1, 2))
    energy_c = centred.square().sum((1, 2))
    gram = centred @ centred.mT if t <= d else centred.mT @ centred
    lam = symmetric_eigenvalues(gram)
    # (ROUNDING eps ||X_b||_F)^2 on the eigenvalues: the tokens' own rounding; and the Gram's own
    # rounding in float64, max(T, D) eps64 lambda_max (the rule of resdiag/metrics/features.py).
    tol = torch.maximum((ROUNDING * eps) ** 2 * energy, max(t, d) * _EPS64 * lam[:, 0])
    s = torch.where(lam > tol[:, None], lam, 0.0).sqrt()
    erank = effective_rank(s)
    ceiling = max(min(t - 1, d), 1)
    res = torch.where(energy > 0, (energy_c / torch.where(energy > 0, energy, 1.0)).sqrt(), 0.0)
    out = torch.stack([erank, erank / ceiling, res], dim=-1)
    return torch.where(finite[:, None], out, torch.nan)


def token_rank(x: Tensor, eps: float | None = None) -> TokenRank:
    """``TokenRank`` of x (B, T, D): ``token_stats`` averaged over the batch (one host sync)."""
    stats = token_stats(x, eps)
    return token_rank_from_stats(stats.mean(0), tuple(x.shape))


def token_rank_from_stats(mean: Tensor | list[float], shape: tuple[int, ...]) -> TokenRank:
    """The ``TokenRank`` of batch-mean stats (3,) (from ``token_stats(...).mean(0)``) of a
    boundary of ``shape`` (B, T, D). A non-finite mean means some sample was not finite."""
    values = [float(v) for v in (mean.tolist() if isinstance(mean, Tensor) else mean)]
    finite = all(v == v and abs(v) != float("inf") for v in values)
    return TokenRank(int(shape[1]), int(shape[2]), *values, finite)
