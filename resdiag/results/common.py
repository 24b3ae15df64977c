"""What every result shares: findings, verdicts, model and run info, and the JSON helpers.

The table, the plot and the CI gate all read these objects (docs/design.md, "Results").
JSON has no NaN or infinity; non-finite floats are written as the strings "NaN", "Infinity"
and "-Infinity" and read back as floats.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Finding:
    rule: str  # stable id, e.g. "autotrainer.vanishing"
    status: str  # grad-flow: "vanishing" | "exploding"; rank: "collapse" | "non_finite";
    # both: "inconclusive" for a rule that could not be applied (rule id "evidence.*")
    value: float
    threshold: float
    message: str
    source: str  # where the rule comes from


@dataclass(frozen=True)
class Verdict:
    status: str  # "healthy" (every rule applied, none fired) or the worst finding's status
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str
    parameters: int
    config: dict[str, Any]
    weights: dict[str, Any] | None = None  # the checkpoint loaded: path, sha256, kind (None: initial)


@dataclass(frozen=True)
class RunInfo:
    batches: int
    batch_size: int
    seed: int
    device: str
    data: str
    mode: str  # "train" (BN uses batch statistics) or "eval"
    loss: float  # mean loss over the batches
    torch_version: str
    resdiag_version: str
    objective: str = "cross_entropy"  # which loss E is: "cross_entropy" or "mse"


class JsonResult:
    """``to_dict``/``to_json`` for a result dataclass: its fields, non-finite floats encoded."""

    def to_dict(self) -> dict[str, Any]:
        return encode(dataclasses.asdict(self))

    def to_json(self) -> str:
        return dumps(self.to_dict())


def verdict_from_dict(d: dict[str, Any]) -> Verdict:
    return Verdict(d["status"], tuple(Finding(**f) for f in d["findings"]))


# ----------------------------------------------------------------------------- JSON helpers

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {k: encode(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [encode(v) for v in obj]
    return obj


def decode(obj: Any) -> Any:
    if isinstance(obj, str) and obj in _NONFINITE:
        return _NONFINITE[obj]
    if isinstance(obj, dict):
        return {k: decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    return obj


def dumps(d: dict[str, Any]) -> str:
    return json.dumps(d, indent=2, allow_nan=False) + "\n"


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write a file so a reader never sees half of it: a temporary file beside it, flushed, then
    renamed over it (``resdiag.writes.write``, where the rules are). A symbolic link is written
    through to its target; a failed write is a ResdiagError naming the path."""
    from resdiag.writes import write

    write(Path(path), data)
