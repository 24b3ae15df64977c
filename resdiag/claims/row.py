"""One row of the claims table: a claim, what was measured, a verdict and the evidence."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

VERDICTS = ("supported", "not supported", "mixed", "inconclusive")


@dataclass(frozen=True)
class ClaimRow:
    id: str  # C1 ... C8
    claim: str
    measured: str  # the numbers, in one line
    verdict: str  # one of VERDICTS
    evidence: str  # what the numbers show, including where they disagree with the papers
    numbers: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # the paper's statement or table the claim comes from
    seconds: float = float("nan")  # wall time of the step that measured it (C5-C8 share one)


def fmt(x: float) -> str:
    if not isinstance(x, (int, float)) or not math.isfinite(x):
        return "n/a"
    return f"{x:.3g}"
