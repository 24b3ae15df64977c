"""Token-rank verdict: have the tokens of each sample collapsed toward one vector?

``tokens.res``  the batch-mean token_res(x_L) = ||X_b - 1 xbar_b^T||_F / ||X_b||_F at the last
                boundary is below ``min_res`` -> "collapse": the tokens of a sample have become
                (nearly) identical. Dong, Cordonnier & Loukas 2021, "Attention is not all you need:
                pure attention loses rank doubly exponentially with depth" (ICML), Theorem 2.2:
                without skip connections (and MLPs) res(X) of self-attention outputs goes to 0
                doubly exponentially in depth; skip connections prevent it (their Section 3).
``tokens.retention``  min(e_L, c) / min(e_0, c) is below ``min_retention`` -> "collapse", e_l the
                batch-mean token erank at x_l (token_erank_ratio * c_l), c_l = min(T_l - 1, D_l),
                c = min(c_0, c_L) (resdiag/diagnosis/reach.py, ``common_retention``); without
                ``ceilings``, or when they are equal, token_erank_ratio(x_L) / token_erank_ratio(x_0).
                "collapse": the tokens span far fewer directions at the output than at the input
                (the effective rank of Roy & Vetterli 2007 on each sample's centred tokens).

Pure: numbers and thresholds in, findings out (docs/tokens.md has the calibration). The rules need
at least one 3-D (batch, tokens, features) boundary; ``not_applied`` says why they could not be
applied, so a caller never reports "healthy" on evidence it does not have.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from resdiag.diagnosis.reach import common_retention
from resdiag.results import Finding

DONG = "Dong, Cordonnier & Loukas 2021, Attention is not all you need (token rank collapse, Thm 2.2)"
ERANK = "Dong et al. 2021 (token rank collapse); effective rank: Roy & Vetterli 2007"


@dataclass(frozen=True)
class TokenThresholds:
    # docs/tokens.md: every intact zoo transformer and ViT (depths 2-24, 2 seeds) keeps
    # token_res(x_L) >= 0.018 (post-LN at depth 24; pre-LN and ViTs >= 0.45); every residual-free
    # one of depth >= 6 is at <= 2.2e-7 (float32 rounding). 1e-3 sits 18x and 4500x from either.
    min_res: float = 1e-3
    # Intact nets keep >= 0.59 of x_0's token erank ratio; residual-free ones of depth >= 6 keep 0.
    min_retention: float = 0.25


def not_applied(token_res: Sequence[float], names: Sequence[str]) -> str | None:
    """Why the token rules cannot be applied (a sentence), or None when they can."""
    if not names:
        return "token rank not measured: no boundary is a 3-D (batch, tokens, features) tensor"
    if not all(math.isfinite(v) for v in token_res):
        first = next(n for n, v in zip(names, token_res, strict=True) if not math.isfinite(v))
        return f"token rank not measured: non-finite features at {first}"
    return None


def diagnose_tokens(
    token_res: Sequence[float],
    token_erank_ratio: Sequence[float],
    names: Sequence[str],
    t: TokenThresholds = TokenThresholds(),
    ceilings: Sequence[int] | None = None,
) -> list[Finding]:
    """Findings of the token rules on the 3-D boundaries x_0..x_L (forward order): batch means of
    ``token_res`` and ``token_erank_ratio`` (``resdiag.metrics.tokens.TokenRank``) and their labels.
    ``ceilings``: each boundary's min(T - 1, D); without them the first and last are taken as equal.
    Empty when no rule fires or when ``not_applied`` gives a reason (the caller reports it)."""
    if not_applied(token_res, names) is not None:
        return []
    findings = []
    res = token_res[-1]
    if res < t.min_res:
        findings.append(Finding("tokens.res", "collapse", res, t.min_res,
                                f"tokens at {names[-1]} are {res:.3g} from identical (token res < "
                                f"{t.min_res:g}; {token_res[0]:.3g} at {names[0]})", DONG))
    first, last = token_erank_ratio[0], token_erank_ratio[-1]
    if len(names) >= 2 and first > 0:
        c0, cl = (ceilings[0], ceilings[-1]) if ceilings else (1, 1)
        kept = common_retention(first * c0, c0, last * cl, cl)
        if kept < t.min_retention:
            how = (f"token erank ratio falls from {first:.3g} at {names[0]} to {last:.3g} at {names[-1]}"
                   if c0 == cl else
                   f"token erank falls from {min(first * c0, min(c0, cl)):.3g} at {names[0]} to "
                   f"{min(last * cl, min(c0, cl)):.3g} at {names[-1]}, both capped at their common "
                   f"ceiling {min(c0, cl)} (ceilings {c0} and {cl})")
            findings.append(Finding("tokens.retention", "collapse", kept, t.min_retention,
                                    f"{how} (retention {kept:.3g} < {t.min_retention:g})", ERANK))
    return findings
