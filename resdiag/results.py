"""Result objects: frozen dataclasses that serialise to a documented, versioned JSON schema.

The table, the plot and the CI gate all read these objects (STYLE.md, convention 6).
JSON has no NaN or infinity; non-finite floats are written as the strings "NaN", "Infinity"
and "-Infinity" and read back as floats.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GRAD_FLOW_SCHEMA = "resdiag.grad-flow"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class LayerGrad:
    index: int  # position among the model's conv/linear layers, input side first
    name: str
    kind: str  # "conv" | "linear"
    shape: tuple[int, ...]
    grad_norm: float  # mean over batches of ||dE/dW||_2 (Frobenius)
    grad_norm_std: float
    weight_norm: float  # ||W||_2 (Frobenius)
    ratio: float  # grad_norm / weight_norm
    relative: float  # grad_norm / grad_norm of the last layer


@dataclass(frozen=True)
class BoundaryGrad:
    index: int  # l in x_l: 0 is the first block's input, L the last block's output
    name: str  # "<block>:in" or "<block>:out"
    shape: tuple[int, ...]
    grad_norm: float  # mean over batches of ||dE/dx_l||_2 over the whole batch tensor
    grad_norm_std: float
    relative: float  # grad_norm / grad_norm at x_L


@dataclass(frozen=True)
class Finding:
    rule: str  # stable id, e.g. "autotrainer.vanishing"
    status: str  # "vanishing" | "exploding" | "non_finite" | ...
    value: float
    threshold: float
    message: str
    source: str  # where the rule comes from


@dataclass(frozen=True)
class Verdict:
    status: str  # "healthy" or the worst finding's status
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str
    parameters: int
    config: dict[str, Any]


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


@dataclass(frozen=True)
class GradFlowSummary:
    weight_first_last_ratio: float  # ||dE/dW_first|| / ||dE/dW_last|| (AUTOTRAINER's ratio)
    boundary_ratio: float  # ||dE/dx_0|| / ||dE/dx_L||
    log_growth_per_block: float  # fitted slope of ln ||dE/dx_l|| per block toward the input
    growth_per_block: float  # exp(log_growth_per_block)


@dataclass(frozen=True)
class GradFlowResult:
    model: ModelInfo
    run: RunInfo
    layers: tuple[LayerGrad, ...]
    boundaries: tuple[BoundaryGrad, ...]
    summary: GradFlowSummary
    verdict: Verdict
    schema: str = field(default=GRAD_FLOW_SCHEMA)
    schema_version: int = field(default=SCHEMA_VERSION)

    def to_dict(self) -> dict[str, Any]:
        return _encode(dataclasses.asdict(self))

    def to_json(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GradFlowResult:
        d = _decode(d)
        return cls(
            model=ModelInfo(**d["model"]),
            run=RunInfo(**d["run"]),
            layers=tuple(LayerGrad(**{**x, "shape": tuple(x["shape"])}) for x in d["layers"]),
            boundaries=tuple(BoundaryGrad(**{**x, "shape": tuple(x["shape"])}) for x in d["boundaries"]),
            summary=GradFlowSummary(**d["summary"]),
            verdict=Verdict(d["verdict"]["status"], tuple(Finding(**f) for f in d["verdict"]["findings"])),
            schema=d["schema"],
            schema_version=d["schema_version"],
        )


# ----------------------------------------------------------------------------- JSON helpers

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _encode(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {k: _encode(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_encode(v) for v in obj]
    return obj


def _decode(obj: Any) -> Any:
    if isinstance(obj, str) and obj in _NONFINITE:
        return _NONFINITE[obj]
    if isinstance(obj, dict):
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    return obj


def dumps(d: dict[str, Any]) -> str:
    return json.dumps(d, indent=2, allow_nan=False) + "\n"


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write a file so a reader never sees half of it: a temp file beside it, then os.replace."""
    path = Path(path)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
