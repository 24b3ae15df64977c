"""Rank verdict: collapse, non_finite, healthy or inconclusive, from documented rules.

``features.retention``  min(e_L, c) / min(e_0, c) < ``feature_retention`` -> "collapse", e_l the erank
                        at x_l, c = min(c_0, c_L), c_l = min(b_l - 1, f_l) (reach.py, ``common_retention``;
                        erank_ratio(x_L) / erank_ratio(x_0) when the ceilings are equal). It tests
                        the degradation argument of He et al. 2015/2016 (most hidden units respond
                        alike, and the product of many layers lowers the rank further): does depth
                        lower the effective rank? Measured as the effective
                        rank (Roy & Vetterli 2007) of the centred features.
``features.rank1``      ||X_L - X_1||_F / ||X_L||_F < ``rank1_distance`` -> "collapse": the features
                        at the output are close to rank one (Dong et al. 2021's measure of rank
                        collapse, with X_1 the best rank-1 approximation).
``weights.erank``       some conv/linear weight has erank / min(m, n) < ``weight_erank_ratio``
                        -> "collapse": a weight matrix that passes on only a few directions.
``non_finite``          a non-finite weight or feature -> "non_finite", naming the first one.

Evidence rules (status "inconclusive"; "healthy" needs every rule applied):
``evidence.features``   fewer than two block boundaries recorded (name the blocks with --blocks
                        REGEX), or the erank at x_0 is 0 (every sample alike at the first block), so
                        retention is undefined: the feature rules were not applied.
``evidence.weights``    no conv/linear weight (embeddings do not count, and the weight rule does not
                        judge them): the weight rule was not applied (not raised when the
                        spectra were not asked for: ``weights_measured=False``, the Monitor's
                        ``spectra_every``; the result says so in ``weights_measured``).
``evidence.tokens``     sequence boundaries whose token rank could not be measured (non-finite, or
                        3-D boundaries whose token axis could not be decided: probes/layout.py).
A rule that cannot discriminate at the batch (token count) measured is not applied either, and an
``evidence.features`` (``evidence.tokens``) finding names it and the minimum it needs
(resdiag/diagnosis/reach.py: a batch of 4 for retention, 2 for rank1; 6 tokens for tokens.retention).
``tokens.res``, ``tokens.retention``  token-level rank collapse of (batch, tokens, features)
                        boundaries, resdiag/diagnosis/tokens.py (Dong et al. 2021).
Order: healthy < inconclusive < collapse < non_finite.
"""

from __future__ import annotations

import math

from resdiag.diagnosis.reach import ceiling, rank1_blocked, retention_blocked, token_res_blocked
from resdiag.diagnosis.thresholds import RankThresholds
from resdiag.diagnosis.tokens import TokenThresholds, diagnose_tokens, not_applied
from resdiag.results import FeatureRankRow, Finding, RankSummary, Verdict, WeightRank

DEGRADATION = "He et al. 2015/2016 (degradation argument); effective rank: Roy & Vetterli 2007"
DONG = "Dong, Cordonnier & Loukas 2021, Attention is not all you need (rank collapse)"
SEVERITY = {"healthy": 0, "inconclusive": 1, "collapse": 2, "non_finite": 3}


def diagnose_rank(
    summary: RankSummary,
    weights: tuple[WeightRank, ...],
    features: tuple[FeatureRankRow, ...],
    t: RankThresholds = RankThresholds(),
    weights_measured: bool = True,
) -> Verdict:
    findings: list[Finding] = []
    for rows, what in ((weights, "weight"), (features, "features")):
        bad = next((r for r in rows if not r.finite), None)
        if bad is not None:
            findings.append(Finding("non_finite", "non_finite", math.nan, math.nan,
                                    f"non-finite {what} at {bad.name} (first in forward order)", DEGRADATION))
    blocked = _blocked(features, t, summary)
    findings += _evidence(summary, weights, features, weights_measured, blocked)
    r = summary.feature_erank_retention
    if "features.retention" not in blocked and math.isfinite(r) and r < t.feature_retention:
        findings.append(Finding("features.retention", "collapse", r, t.feature_retention,
                                _retention_message(features, summary, r, t.feature_retention), DEGRADATION))
    d = summary.rank1_distance_last
    if "features.rank1" not in blocked and math.isfinite(d) and d < t.rank1_distance:
        findings.append(Finding("features.rank1", "collapse", d, t.rank1_distance,
                                f"features at x_L are {d:.3g} from rank one (< {t.rank1_distance:g})", DONG))
    findings += _tokens(features, t, findings)
    low = [w for w in _matmuls(weights)
           if math.isfinite(w.erank_ratio) and w.erank_ratio < t.weight_erank_ratio]
    if low:
        worst = min(low, key=lambda w: w.erank_ratio)
        findings.append(Finding("weights.erank", "collapse", worst.erank_ratio, t.weight_erank_ratio,
                                f"{len(low)} weight matrices have erank ratio < {t.weight_erank_ratio:g}; "
                                f"lowest {worst.erank_ratio:.3g} at {worst.name}", DEGRADATION))
    status = max((f.status for f in findings), key=SEVERITY.__getitem__, default="healthy")
    return Verdict(status, tuple(findings))


def _matmuls(weights: tuple[WeightRank, ...]) -> list[WeightRank]:
    """The weights the weight rule judges: conv/linear matmuls, not embedding tables (a lookup, not
    a map on the residual stream; docs/architectures.md, "Embeddings in the rules")."""
    return [w for w in weights if w.kind != "embedding"]


def _size(row: FeatureRankRow) -> tuple[int, int]:
    """(b, f) of a boundary: samples, and features per sample (a conv map flattened)."""
    return row.shape[0], math.prod(row.shape[1:])


def _blocked(features: tuple[FeatureRankRow, ...], t: RankThresholds, summary: RankSummary) -> dict[str, str]:
    """The feature rules that cannot discriminate at the batch and widths measured, with the reason
    (resdiag/diagnosis/reach.py); empty without two finite boundaries (other findings say why)."""
    if len(features) < 2 or not all(f.finite for f in features):
        return {}
    first, last = _size(features[0]), _size(features[-1])
    reasons = {"features.retention": retention_blocked("batch", "features.retention", first, last,
                                                       features[0].erank, t.feature_retention),
               "features.rank1": rank1_blocked(*last, t.rank1_distance)}
    return {rule: why for rule, why in reasons.items() if why is not None}


def _retention_message(features: tuple[FeatureRankRow, ...], summary: RankSummary, r: float, t: float) -> str:
    """The features.retention sentence: the ratios when x_0 and x_L share a ceiling, else the eranks
    under the common ceiling."""
    (c0, cl) = (ceiling(*_size(f)) for f in (features[0], features[-1])) if len(features) >= 2 else (0, 0)
    if c0 == cl:
        return (f"feature erank ratio falls from {summary.feature_erank_ratio_first:.3g} at x_0 to "
                f"{summary.feature_erank_ratio_last:.3g} at x_L (retention {r:.3g} < {t:g})")
    c = min(c0, cl)
    return (f"feature erank falls from {min(features[0].erank, c):.3g} at x_0 to "
            f"{min(features[-1].erank, c):.3g} at x_L, both capped at their common ceiling {c} "
            f"(ceilings {c0} and {cl}; retention {r:.3g} < {t:g})")


def _evidence(summary: RankSummary, weights: tuple[WeightRank, ...], features: tuple[FeatureRankRow, ...],
              weights_measured: bool, blocked: dict[str, str]) -> list[Finding]:
    out = [Finding("evidence.features", "inconclusive", float(_size(features[-1])[0]), math.nan,
                   why, DEGRADATION) for why in blocked.values()]
    if len(features) < 2:
        out.append(Finding("evidence.features", "inconclusive", float(len(features)), 2.0,
                           "no block boundary found, so the feature rules were not applied: name the "
                           "blocks with --blocks REGEX (Monitor: blocks=REGEX)", DEGRADATION))
    elif ("features.retention" not in blocked and all(f.finite for f in features)
          and not summary.feature_erank_ratio_first > 0):
        out.append(Finding("evidence.features", "inconclusive", summary.feature_erank_ratio_first, 0.0,
                           "the feature erank at x_0 is 0 (every sample alike at the first block), so "
                           "retention is undefined: use inputs that differ", DEGRADATION))
    if not _matmuls(weights) and weights_measured:
        out.append(Finding("evidence.weights", "inconclusive", 0.0, 1.0,
                           "no conv/linear weight found, so the weight rule was not applied", DEGRADATION))
    return out


def _tokens(features: tuple[FeatureRankRow, ...], t: RankThresholds, found: list[Finding]) -> list[Finding]:
    """The token rules (resdiag/diagnosis/tokens.py) on the sequence boundaries, if there are any;
    a network without (batch, tokens, features) boundaries has no token rank to judge. A rule that
    cannot discriminate at the token count measured is reported, not applied (diagnosis/reach.py)."""
    unknown = [f.name for f in features if len(f.shape) == 3 and f.tokens == 0]
    if unknown:  # resdiag/probes/layout.py could not tell tokens from features there
        why = (f"token rank not measured at {', '.join(unknown[:3])}{' ...' if len(unknown) > 3 else ''}: "
               "no module inside the block takes its 3-D input as it is, or they disagree on which "
               "axis holds the features (docs/tokens.md, \"Layout\"), so the token rules were not applied")
        if not any(f.rule == "non_finite" for f in found):
            return [Finding("evidence.tokens", "inconclusive", float(len(unknown)), math.nan, why, DEGRADATION)]
        return []
    seq = [f for f in features if f.tokens > 0]
    if not seq:
        return []
    res, ratio, names = [f.token_res for f in seq], [f.token_erank_ratio for f in seq], [f.name for f in seq]
    reason = not_applied(res, names)
    if reason is not None:
        if any(f.rule == "non_finite" for f in found):
            return []
        return [Finding("evidence.tokens", "inconclusive", math.nan, math.nan, reason, DEGRADATION)]
    first, last = seq[0], seq[-1]
    width = last.token_features or last.tokens  # 0 in results written before it was recorded
    blocked = {"tokens.res": token_res_blocked(last.tokens), "tokens.retention": None}
    if len(seq) < 2:
        blocked["tokens.retention"] = "tokens.retention not applied: only one sequence boundary"
    elif not first.token_erank_ratio > 0 and last.tokens >= 2:
        blocked["tokens.retention"] = (f"tokens.retention not applied: the token erank at {first.name} is "
                                       "0 (every token alike in every sample), so retention is undefined")
    else:
        e0 = first.token_erank_ratio * ceiling(first.tokens, first.token_features or first.tokens)
        blocked["tokens.retention"] = retention_blocked("token count", "tokens.retention",
                                                        (first.tokens, first.token_features or first.tokens),
                                                        (last.tokens, width), e0, t.token_retention)
    out = [Finding("evidence.tokens", "inconclusive", float(last.tokens), math.nan, why, DEGRADATION)
           for why in blocked.values() if why is not None]
    ceilings = [ceiling(f.tokens, f.token_features or f.tokens) for f in seq]
    fired = diagnose_tokens(res, ratio, names, TokenThresholds(t.token_res, t.token_retention), ceilings)
    return out + [f for f in fired if blocked.get(f.rule) is None]
