"""Summaries of a gradient-norm profile. Pure functions on sequences of floats.

g_l = ||dE/dx_l|| for l = 0 (input of the first block) .. L (output of the last block).
The seed's argument (He et al. 2016, eqs. 4-5 and 7-8): with identity shortcuts
dE/dx_l = dE/dx_L (1 + d/dx_l sum F), so g_l does not vanish; with shortcuts scaled by lam,
dE/dx_l ~ lam^(L-l) dE/dx_L, i.e. ln g_l ~ (L - l) ln lam.
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
