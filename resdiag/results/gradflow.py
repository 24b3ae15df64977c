"""The grad-flow result (schema "resdiag.grad-flow", docs/schema.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from resdiag.results.common import JsonResult, ModelInfo, RunInfo, Verdict, decode, verdict_from_dict

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
    has_grad: bool = True  # False for a layer no batch gave a gradient (frozen, unused, cut off)
    frozen: bool = False  # its weight had requires_grad=False in every batch: not judged


@dataclass(frozen=True)
class BoundaryGrad:
    index: int  # l in x_l: 0 is the first block's input, L the last block's output
    name: str  # "<block>:in" or "<block>:out"
    shape: tuple[int, ...]
    grad_norm: float  # mean over batches of ||dE/dx_l||_2 over the whole batch tensor
    grad_norm_std: float
    relative: float  # grad_norm / grad_norm at x_L


@dataclass(frozen=True)
class GradFlowSummary:
    weight_first_last_ratio: float  # ||dE/dW_first|| / ||dE/dW_last|| (AUTOTRAINER's ratio)
    boundary_ratio: float  # ||dE/dx_0|| / ||dE/dx_L||
    log_growth_per_block: float  # fitted slope of ln ||dE/dx_l|| per block toward the input
    growth_per_block: float  # exp(log_growth_per_block)
    # ||dE/d output|| (mean over batches) of the model's output: 0 means the loss is flat in the
    # output (nothing to judge), NaN that it was not recorded (older results, or no tensor output)
    output_grad_norm: float = math.nan
    # median over the matmuls of RMS(W) * sqrt(fan_in) (resdiag/metrics/scale.py); NaN in older results
    weight_gain_median: float = math.nan


@dataclass(frozen=True)
class GradFlowResult(JsonResult):
    model: ModelInfo
    run: RunInfo
    layers: tuple[LayerGrad, ...]
    boundaries: tuple[BoundaryGrad, ...]
    summary: GradFlowSummary
    verdict: Verdict
    schema: str = field(default=GRAD_FLOW_SCHEMA)
    schema_version: int = field(default=SCHEMA_VERSION)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GradFlowResult:
        d = decode(d)
        return cls(
            model=ModelInfo(**d["model"]),
            run=RunInfo(**d["run"]),
            layers=tuple(LayerGrad(**{**x, "shape": tuple(x["shape"])}) for x in d["layers"]),
            boundaries=tuple(BoundaryGrad(**{**x, "shape": tuple(x["shape"])}) for x in d["boundaries"]),
            summary=GradFlowSummary(**d["summary"]),
            verdict=verdict_from_dict(d["verdict"]),
            schema=d["schema"],
            schema_version=d["schema_version"],
        )
