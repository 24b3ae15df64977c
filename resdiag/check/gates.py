"""Absolute gates: each configured limit on a metric, and each probe's verdict. Pure functions."""

from __future__ import annotations

import math

from resdiag.check.config import GateLimits
from resdiag.check.metrics import LIMITS
from resdiag.check.result import Gate, ModelRun, fmt


def limit_gates(run: ModelRun, gates: GateLimits) -> list[Gate]:
    """One gate per active limit: ``max_*`` passes when value <= limit, ``min_*`` when value >= limit.

    A non-finite value (NaN, inf) never passes: it means the probe saw no usable gradient or features.
    """
    out = []
    for key, limit in gates.limits:
        spec = LIMITS[key]
        value = run.metrics[spec.metric]
        is_max = spec.bound == "max"
        op = "<=" if is_max else ">="
        if not math.isfinite(value):
            ok, why = False, f"{spec.metric} = {fmt(value)} is not finite"
        else:
            ok = value <= limit if is_max else value >= limit
            bad = ">" if is_max else "<"
            why = f"{spec.metric} = {fmt(value)} {op if ok else bad} {fmt(limit)}"
        out.append(Gate(run.name, key, "limit", value, f"{op} {fmt(limit)}", ok, why))
    return out


def verdict_gates(run: ModelRun) -> list[Gate]:
    """One gate per probe run: its verdict (docs/gradflow.md's rules) must be "healthy"."""
    out = []
    for probe, verdict in run.verdicts.items():
        ok = verdict.status == "healthy"
        why = "; ".join(f.message for f in verdict.findings) if not ok else f"{probe} verdict is healthy"
        out.append(Gate(run.name, f"verdict.{probe}", "verdict", verdict.status, "healthy", ok,
                        why or f"{probe} verdict is {verdict.status}"))
    return out
