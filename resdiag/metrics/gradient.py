"""Summaries of a gradient-norm profile. Pure functions on sequences of floats.

g_l = ||dE/dx_l|| for l = 0 (input of the first block) .. L (output of the last block).
The argument of He et al. 2016 ("Identity Mappings in Deep Residual Networks", eqs. 4-5 and 7-8):
with identity shortcuts dE/dx_l = dE/dx_L (1 + d/dx_l sum F), so g_l does not vanish; with
shortcuts scaled by lam, dE/dx_l ~ lam^(L-l) dE/dx_L, i.e. ln g_l ~ (L - l) ln lam.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def end_to_end_ratio(norms: Sequence[float]) -> float:
    """g_0 / g_L: how much the gradient grows (> 1) or shrinks (< 1) from the output to the input.

    NaN when either end is missing or non-finite, or g_L is 0.
    """
    if len(norms) < 2:
        return math.nan
    first, last = float(norms[0]), float(norms[-1])
    if not (math.isfinite(first) and math.isfinite(last)) or last == 0:
        return math.nan
    return first / last


def log_growth_per_block(norms: Sequence[float]) -> float:
    """Least-squares slope s of ln g_l against (L - l), the number of blocks back from the output.

    exp(s) is the factor by which the gradient norm changes per block as it travels toward the
    input; for shortcuts scaled by lam and a small branch, s ~ ln lam (He et al. 2016, eq. 7).
    NaN with fewer than two usable points; zero or non-finite norms are not usable.

    The closed form s = sum (x - mean x)(y - mean y) / sum (x - mean x)^2 with exactly rounded sums
    (``math.fsum``); numpy's ``polyfit`` gives the same to ~1e-15 at 30x the cost, which the Monitor
    pays on every recorded step.
    """
    last = len(norms) - 1
    points = [(float(last - i), math.log(g)) for i, g in enumerate(map(float, norms))
              if math.isfinite(g) and g > 0]
    if len(points) < 2:
        return math.nan
    x_mean = math.fsum(x for x, _ in points) / len(points)
    y_mean = math.fsum(y for _, y in points) / len(points)
    return math.fsum((x - x_mean) * (y - y_mean) for x, y in points) / math.fsum(
        (x - x_mean) ** 2 for x, _ in points)


def unit_norms(
    norms: Sequence[float], names: Sequence[str], blocks: Sequence[str]
) -> tuple[list[float], list[str]]:
    """Per-layer gradient norms grouped into the units of a residual network, in order.

    AUTOTRAINER's rule compares the gradient of the network's first layer with its last. In a
    residual network the repeated unit is the block: a layer inside block ``b`` (its name is ``b``
    or starts with ``b.``) joins that block's unit, whose norm is sqrt(sum of squares) — the norm
    of all the block's weight gradients taken together; a layer outside every block (a stem, a
    classifier) is a unit by itself. A unit sits where its first layer is. A CIFAR ResNet's first and
    last units are still its stem conv and classifier; a transformer's first unit is its first block,
    not that block's query projection alone, whose gradient is small at initialisation by design
    (uniform attention) and would read as vanishing. NaN or inf propagate into their unit.
    """
    groups: list[list[float]] = []
    labels: list[str] = []
    where: dict[str, int] = {}
    block_names = set(blocks)
    for norm, name in zip(norms, names, strict=True):
        unit = _enclosing(name, block_names)
        if unit is not None and unit in where:
            groups[where[unit]].append(float(norm))
            continue
        if unit is not None:
            where[unit] = len(groups)
        groups.append([float(norm)])
        labels.append(name if unit is None else unit)
    # math.hypot scales internally: no square under- or overflows (norms of 1e-200 or 1e200)
    return [math.hypot(*g) if all(math.isfinite(v) for v in g) else _non_finite(g) for g in groups], labels


def _enclosing(name: str, blocks: set[str]) -> str | None:
    """The outermost block that is ``name`` or contains it (its name is a dotted prefix)."""
    parts = name.split(".")
    for k in range(1, len(parts) + 1):
        prefix = ".".join(parts[:k])
        if prefix in blocks:
            return prefix
    return None


def _non_finite(values: list[float]) -> float:
    return math.nan if any(math.isnan(v) for v in values) else math.inf


def first_non_finite(values: Sequence[float]) -> int | None:
    """Index of the first NaN or infinite value, or None."""
    for i, v in enumerate(values):
        if not math.isfinite(v):
            return i
    return None


def mean_std(samples: Sequence[Sequence[float]]) -> tuple[list[float], list[float]]:
    """Per-position mean and (population) std over steps; NaN or inf in any step propagates.

    Sums in step order, as numpy's mean and std over axis 0 of two or more columns do (the same
    bits; a single column numpy sums pairwise from 8 steps on, which differs in the last bit), in
    plain Python: the Monitor's single step costs microseconds, not numpy's fixed overhead."""
    n = len(samples)
    if n == 0:
        return [], []
    means: list[float] = []
    stds: list[float] = []
    for column in zip(*samples, strict=True):
        values = [float(v) for v in column]
        mean = _sum(values) / n
        means.append(mean)
        stds.append(math.sqrt(_sum([(v - mean) * (v - mean) for v in values]) / n))
    return means, stds


def _sum(values: list[float]) -> float:
    """Left-to-right float64 sum, as numpy's reduction over axis 0 makes it (the builtin ``sum``
    compensates its rounding from Python 3.12 on: other bits); inf - inf gives NaN, no warning."""
    total = values[0]
    for v in values[1:]:
        total += v
    return total
