"""Whether a rank rule can tell collapse from health at the size measured (docs/rank.md, "Verdict").

A rule applied to a matrix too small for it is silent and wrong either way: at a batch of 2 the
centred features have at most one dimension, so their erank ratio is 1 (or 0) whatever the network
does and ``features.retention`` reads "healthy"; a single sample is always rank one, so
``features.rank1`` reads "collapse". Each function here says why a rule cannot discriminate (a
sentence naming the minimum size it needs), or None when it can; the caller reports the sentence as
an ``evidence.*`` finding with status "inconclusive" instead of applying the rule. Pure arithmetic.

``features.retention`` (and ``tokens.retention``) compare an erank ratio at x_L with the one at x_0.
The most collapsed x_L that is not all-equal is rank one: erank 1, erank ratio 1 / c_L with
c_L = min(b - 1, f_L). Its retention is (1 / c_L) / ratio_0, so the rule can fire on it only when
its reach ratio_0 * c_L exceeds 1 / threshold: at the default 0.5, a batch of at least 4 (c_L >= 3)
and an x_0 that is not itself confined to 2 effective directions.
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


def retention_blocked(what: str, rule: str, count: int, features_last: int, reach: float,
                      threshold: float) -> str | None:
    """Why ``rule`` (a retention rule) cannot fire, or None. ``what``: "batch" or "token count";
    ``count``: b (or T) at x_L; ``reach``: 1 / (the retention a rank-one x_L would read)."""
    limit = 1.0 / threshold
    if reach > limit:
        return None
    need = retention_min_ceiling(threshold)
    unit = "samples" if what == "batch" else "tokens"
    rank_one = f"even a rank-one x_L would keep retention >= {threshold:g}, so {rule} cannot fire"
    if count - 1 < need:
        return (f"{rule} not applied: a {what} of {count} leaves at most {max(count - 1, 0)} centred "
                f"dimensions; {rank_one}: it needs at least {need + 1} {unit}{_hint(what)}")
    if features_last < need:
        return (f"{rule} not applied: x_L has {features_last} features per {unit[:-1]}; {rank_one}: "
                f"it needs at least {need}")
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
