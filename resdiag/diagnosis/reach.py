"""Whether a rank rule can tell collapse from health at the size measured (docs/rank.md, "Verdict").

A rule applied to a matrix too small for it is silent and wrong either way: at a batch of 2 the
centred features have at most one dimension, so their erank ratio is 1 (or 0) whatever the network
does and ``features.retention`` reads "healthy"; a single sample is always rank one, so
``features.rank1`` reads "collapse". Each function here says why a rule cannot discriminate (a
sentence naming the minimum size it needs), or None when it can; the caller reports the sentence as
an ``evidence.*`` finding with status "inconclusive" instead of applying the rule. Pure arithmetic.

``features.retention`` (and ``tokens.retention``) compare the effective rank at x_L with the one at
x_0 under their common ceiling (``common_retention``): with c_l = min(b_l - 1, f_l) (centring removes
one dimension; for tokens min(T - 1, D)) and c = min(c_0, c_L),
retention = min(e_L, c) / min(e_0, c). When the ceilings are equal this is erank_ratio(x_L) /
erank_ratio(x_0); when they differ (a block that lifts a 3-wide input to 128 features) a ratio of
ratios compares numbers with different denominators, and reads a rank that grew 2.99 -> 13.8 as a
fall 0.998 -> 0.108. The most collapsed x_L that is not all-equal is rank one, erank 1, retention
1 / min(e_0, c); the rule can fire on it only when its reach min(e_0, c) exceeds 1 / threshold: at
the default 0.5, a batch of at least 4 (c >= 3) and an x_0 that spans more than 2 effective
directions, and at least 3 features at x_0 and at x_L.
``features.rank1`` fires when ||X - X_1||_F / ||X||_F < t; that distance is at most
sqrt(1 - 1 / min(b, f)) (a flat spectrum), so it can read "not collapsed" only when
min(b, f) >= 1 / (1 - t^2): a batch of 2 at the default 0.1.
``tokens.res`` needs T >= 2 tokens (one token is its own mean: res 0 whatever the network does).
"""

from __future__ import annotations

import math


def retention_min_ceiling(threshold: float) -> int:
    """The smallest centred ceiling c with 1 / c < threshold: a rank-one x_L can then fire the rule."""
    return math.floor(1.0 / threshold) + 1


def rank1_min_size(threshold: float) -> int:
    """The smallest min(b, f) whose largest possible rank-1 distance sqrt(1 - 1/n) reaches threshold."""
    if threshold >= 1:
        return math.inf  # type: ignore[return-value]  # sqrt(1 - 1/n) < 1: never reached
    return math.ceil(1.0 / (1.0 - threshold * threshold))


def ceiling(count: int, features: int) -> int:
    """The centred rank ceiling min(count - 1, features) of a count x features matrix (count: samples
    or tokens), at least 0."""
    return max(min(count - 1, features), 0)


def common_retention(erank_first: float, ceiling_first: int, erank_last: float, ceiling_last: int) -> float:
    """min(e_L, c) / min(e_0, c), c = min(c_0, c_L): the erank kept from x_0 to x_L, both measured
    against the lower of their two ceilings (above); NaN when min(e_0, c) is 0 or not finite."""
    c = min(ceiling_first, ceiling_last)
    if not (math.isfinite(erank_first) and math.isfinite(erank_last) and min(erank_first, c) > 0):
        return math.nan
    return min(erank_last, c) / min(erank_first, c)


def retention_blocked(what: str, rule: str, first: tuple[int, int], last: tuple[int, int],
                      erank_first: float, threshold: float) -> str | None:
    """Why ``rule`` (a retention rule) cannot fire, or None. ``what``: "batch" or "token count";
    ``first``, ``last``: (count, features) at x_0 and x_L, count b (or T); ``erank_first``: e_0.
    The reach is min(e_0, c) (above): 1 / (the retention a rank-one x_L would read)."""
    c = min(ceiling(*first), ceiling(*last))
    reach = min(erank_first, c) if math.isfinite(erank_first) else 0.0
    if reach > 1.0 / threshold:
        return None
    need = retention_min_ceiling(threshold)
    unit = "samples" if what == "batch" else "tokens"
    rank_one = f"even a rank-one x_L would keep retention >= {threshold:g}, so {rule} cannot fire"
    for (count, features), at in ((last, "x_L"), (first, "x_0")):
        if count - 1 < need:
            return (f"{rule} not applied: a {what} of {count} at {at} leaves at most {max(count - 1, 0)} "
                    f"centred dimensions; {rank_one}: it needs at least {need + 1} {unit}{_hint(what)}")
        if features < need:
            return (f"{rule} not applied: {at} has {features} features per {unit[:-1]}; {rank_one}: "
                    f"it needs at least {need} at x_0 and at x_L")
    if not reach > 0:
        return None  # every sample (token) alike at x_0: the caller's own sentence
    return (f"{rule} not applied: x_0 is too close to rank one (a rank-one x_L would read retention "
            f"{1 / reach:.3g}, not below {threshold:g}), so {rule} cannot fire: use inputs that differ "
            f"in more directions")


def rank1_blocked(batch: int, features: int, threshold: float) -> str | None:
    """Why ``features.rank1`` cannot read "not collapsed" at x_L (b x f), or None."""
    need = rank1_min_size(threshold)
    n = min(batch, features)
    if n >= need:
        return None
    most = math.sqrt(max(1.0 - 1.0 / n, 0.0)) if n > 0 else 0.0
    return (f"features.rank1 not applied: x_L of {batch} samples x {features} features is at most "
            f"{most:.3g} from rank one (a single sample or feature is always rank one), so the rule "
            f"would read collapse whatever the network does: it needs min(batch, features) >= {need}"
            f"{_hint('batch') if batch < need else ''}")


def _hint(what: str) -> str:
    return " (the Monitor measures the first micro-batch of a step)" if what == "batch" else ""


def token_res_blocked(tokens: int) -> str | None:
    """Why ``tokens.res`` cannot read "not collapsed", or None."""
    if tokens >= 2:
        return None
    return ("tokens.res not applied: a sequence of 1 token is its own mean (token res 0 whatever "
            "the network does): it needs at least 2 tokens")
