"""The ``resdiag check`` result (schema "resdiag.check"): what was measured and every gate's outcome.

Every output format (the table, JSON, JUnit XML, GitHub annotations) reads this one object. It holds
no time stamps, durations or paths, so the same config and seed give the same bytes on the CPU.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from resdiag.results import Verdict, dumps, encode

CHECK_SCHEMA = "resdiag.check"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ModelRun:
    """One model's measurements."""

    name: str
    fingerprint: dict[str, Any]  # what was built and how it was run; compared with a baseline's
    metrics: dict[str, float]  # metric name (resdiag.check.metrics.METRICS) -> value
    verdicts: dict[str, Verdict]  # probe -> its verdict


@dataclass(frozen=True)
class Gate:
    """One pass/fail decision: a limit, a probe's verdict, or a comparison with the baseline."""

    model: str
    name: str  # "max_boundary_ratio", "verdict.grad-flow", "baseline.boundary_ratio", "baseline"
    kind: str  # "limit" | "verdict" | "baseline"
    value: float | str  # the measured number, or the verdict's status
    limit: str  # what passes, for humans: "<= 1000", "healthy", "2.94 ± 25%"
    passed: bool
    message: str  # one line: the comparison, and on failure what is wrong

    @property
    def id(self) -> str:
        return f"{self.model}.{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class CheckResult:
    resdiag_version: str
    torch_version: str
    seed: int
    device: str
    threads: int  # torch CPU threads: the last digits of CPU results can depend on it
    models: tuple[ModelRun, ...]
    gates: tuple[Gate, ...]
    warnings: tuple[str, ...] = ()
    schema: str = field(default=CHECK_SCHEMA)
    schema_version: int = field(default=SCHEMA_VERSION)

    @property
    def failed(self) -> tuple[Gate, ...]:
        return tuple(g for g in self.gates if not g.passed)

    @property
    def passed(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return encode({
            "schema": self.schema, "schema_version": self.schema_version,
            "status": "pass" if self.passed else "fail",
            "counts": {"gates": len(self.gates), "passed": len(self.gates) - len(self.failed),
                       "failed": len(self.failed)},
            "resdiag_version": self.resdiag_version, "torch_version": self.torch_version,
            "seed": self.seed, "device": self.device, "threads": self.threads,
            "models": [{**dataclasses.asdict(m), "verdicts": {k: v.to_dict() for k, v in m.verdicts.items()}}
                       for m in self.models],
            "gates": [g.to_dict() for g in self.gates],
            "warnings": list(self.warnings),
        })

    def to_json(self) -> str:
        return dumps(self.to_dict())


def fmt(value: float | str) -> str:
    """A number as the tables and messages show it: 4 significant digits."""
    if isinstance(value, str):
        return value
    if math.isnan(value):
        return "NaN"
    return f"{value:.4g}"
