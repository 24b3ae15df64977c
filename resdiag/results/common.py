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
class Scope:
    """What a grad-flow verdict read: the conv/linear layers (the rules' matmuls) with a gradient,
    and the block boundaries recorded. The rest is named, never silently left out."""
    layers: int  # conv/linear layers found
    judged: int  # of them, those that received a gradient (the rules read these)
    frozen: tuple[str, ...] = ()  # weight with requires_grad=False: not judged, by the user's choice
    no_gradient: tuple[str, ...] = ()  # trainable, yet no gradient in any batch (rule evidence.unreached)
    blocks: int = 0  # blocks found
    boundaries: int = 0  # boundaries recorded (inputs that required grad, and the last output)
    inert_boundaries: int = 0  # block inputs/outputs skipped: nothing before them requires grad

    def line(self) -> str:
        """One line for the verdict panel: empty when every layer and boundary was judged."""
        if self.judged == self.layers and not self.inert_boundaries:
            return ""
        parts = [f"judged on {self.judged} of {self.layers} conv/linear layers"]
        if self.inert_boundaries:
            parts.append(f"{self.inert_boundaries} block boundar{'ies' if self.inert_boundaries > 1 else 'y'}"
                         " without gradient (nothing before them requires grad)")
        if self.frozen:
            parts.append(f"frozen (requires_grad=False), not judged: {short_list(self.frozen)}")
        if self.no_gradient:
            parts.append(f"trainable, no gradient: {short_list(self.no_gradient)}")
        return "; ".join(parts)


def short_list(names: tuple[str, ...], show: int = 4) -> str:
    more = f", … ({len(names)} in all)" if len(names) > show else ""
    return ", ".join(names[:show]) + more


@dataclass(frozen=True)
class Verdict:
    status: str  # "healthy" (every rule applied, none fired) or the worst finding's status
    findings: tuple[Finding, ...] = ()
    scope: Scope | None = None  # grad-flow: what the rules read (None: rank, and older results)

    def to_dict(self) -> dict[str, Any]:
        """Its JSON object: ``scope`` only where there is one (a rank verdict keeps its two keys)."""
        d = encode(dataclasses.asdict(self))
        if self.scope is None:
            del d["scope"]
        return d


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
        d = encode(dataclasses.asdict(self))
        if isinstance(getattr(self, "verdict", None), Verdict):
            d["verdict"] = self.verdict.to_dict()
        return d

    def to_json(self) -> str:
        return dumps(self.to_dict())


def verdict_from_dict(d: dict[str, Any]) -> Verdict:
    scope = d.get("scope")
    if scope is not None:
        scope = Scope(**{**scope, "frozen": tuple(scope["frozen"]),
                         "no_gradient": tuple(scope["no_gradient"])})
    return Verdict(d["status"], tuple(Finding(**f) for f in d["findings"]), scope)


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
