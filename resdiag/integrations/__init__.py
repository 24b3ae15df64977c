"""Callbacks for training frameworks (docs/api.md, "Training stacks"): ``resdiag.integrations.lightning``
and ``resdiag.integrations.transformers``. Each imports its framework only when imported itself."""

from __future__ import annotations

import math

from resdiag.monitor import Recording


def log_values(rec: Recording) -> dict[str, float]:
    """What a callback hands to the framework's logger: Lightning's ``grad_norm`` keys, every
    registered metric as ``resdiag/<metric>``, and ``resdiag/healthy`` (1.0 when the verdict is
    healthy, 0.0 otherwise; the status itself is in the JSON lines). Non-finite values are left
    out (loggers reject or mis-plot them; the JSON lines keep them as null)."""
    out = rec.lightning() | {f"resdiag/{k}": v for k, v in rec.scalars().items()}
    out["resdiag/healthy"] = 1.0 if rec.result.verdict.status == "healthy" else 0.0
    return {k: float(v) for k, v in out.items() if math.isfinite(v)}
