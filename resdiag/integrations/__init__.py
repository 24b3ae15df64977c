"""Callbacks for training frameworks (docs/api.md, "Training stacks"): ``resdiag.integrations.lightning``
and ``resdiag.integrations.transformers``. Each imports its framework only when imported itself."""

from __future__ import annotations

import math
from pathlib import Path

from resdiag.monitor import Monitor, Recording


def log_values(rec: Recording) -> dict[str, float]:
    """What a callback hands to the framework's logger: Lightning's ``grad_norm`` keys, every
    registered metric as ``resdiag/<metric>``, and ``resdiag/healthy`` (1.0 when the verdict is
    healthy, 0.0 otherwise; the status itself is in the JSON lines). Non-finite values are left
    out (loggers reject or mis-plot them; the JSON lines keep them as null)."""
    out = rec.lightning() | {f"resdiag/{k}": v for k, v in rec.scalars().items()}
    out["resdiag/healthy"] = 1.0 if rec.result.verdict.status == "healthy" else 0.0
    return {k: float(v) for k, v in out.items() if math.isfinite(v)}


class Recorder:
    """What both callbacks hold: the Monitor's settings, the Monitor (made when training starts,
    on the module the framework trains) and its history."""

    def __init__(self, every: int = 100, *, features: bool = False, blocks: str | None = None,
                 jsonl: str | Path | None = None, **monitor_kwargs):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every, self.features, self.blocks, self.jsonl = every, features, blocks, jsonl
        self.monitor_kwargs = monitor_kwargs
        self.monitor: Monitor | None = None

    @property
    def history(self) -> list[Recording]:
        return self.monitor.history if self.monitor is not None else []

    def make_monitor(self, model, jsonl) -> None:
        if self.monitor is None:
            self.monitor = Monitor(model, every=self.every, features=self.features, blocks=self.blocks,
                                   jsonl=jsonl, **self.monitor_kwargs)
