"""Summaries of a gradient-norm profile. Pure functions on sequences of floats.

g_l = ||dE/dx_l|| for l = 0 (input of the first block) .. L (output of the last block).
The argument of He et al. 2016 ("Identity Mappings in Deep Residual Networks", eqs. 4-5 and 7-8):
with identity shortcuts dE/dx_l = dE/dx_L (1 + d/dx_l sum F), so g_l does not vanish; with
shortcuts scaled by lam, dE/dx_l ~ lam^(L-l) dE/dx_L, i.e. ln g_l ~ (L - l) ln lam.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


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
    """
    g = np.asarray(norms, dtype=np.float64)
    steps_back = np.arange(len(g))[::-1].astype(np.float64)
    ok = np.isfinite(g) & (g > 0)
    if ok.sum() < 2:
        return math.nan
    slope, _ = np.polyfit(steps_back[ok], np.log(g[ok]), 1)
    return float(slope)


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
    for norm, name in zip(norms, names, strict=True):
        unit = next((b for b in blocks if name == b or name.startswith(b + ".")), None)
        if unit is not None and unit in where:
            groups[where[unit]].append(float(norm))
            continue
        if unit is not None:
            where[unit] = len(groups)
        groups.append([float(norm)])
        labels.append(name if unit is None else unit)
    # math.hypot scales internally: no square under- or overflows (norms of 1e-200 or 1e200)
    return [math.hypot(*g) if all(math.isfinite(v) for v in g) else _non_finite(g) for g in groups], labels


def _non_finite(values: list[float]) -> float:
    return math.nan if any(math.isnan(v) for v in values) else math.inf


def first_non_finite(values: Sequence[float]) -> int | None:
    """Index of the first NaN or infinite value, or None."""
    for i, v in enumerate(values):
        if not math.isfinite(v):
            return i
    return None


def mean_std(samples: Sequence[Sequence[float]]) -> tuple[list[float], list[float]]:
    """Per-position mean and (population) std over steps; NaN or inf in any step propagates."""
    arr = np.asarray(samples, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        return arr.mean(axis=0).tolist(), arr.std(axis=0).tolist()
