"""The numbers ``resdiag check`` gates on, and the limit keys over them: plain data.

Each metric is a field of a probe's summary (``GradFlowSummary``, ``RankSummary``; docs/gradflow.md
has the formulas). A limit is a ``max_*`` or ``min_*`` key of a ``gates`` table; its default, where it
has one, is the threshold the probe's own verdict uses (``resdiag.diagnosis.thresholds``).
"""

from __future__ import annotations

from dataclasses import dataclass

from resdiag.diagnosis.thresholds import GradThresholds, RankThresholds

GRAD_FLOW, RANK = "grad-flow", "rank"
PROBES = (GRAD_FLOW, RANK)


@dataclass(frozen=True)
class Metric:
    name: str  # the summary field, and the key of baseline.tolerance
    probe: str
    tolerance: str  # default baseline tolerance: relative for ratios, absolute for fractions and slopes
    doc: str


@dataclass(frozen=True)
class Limit:
    key: str  # the gates key and the gate's name
    metric: str
    bound: str  # "max" (value <= limit passes) or "min" (value >= limit passes)
    default: float | None  # None: off unless configured


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("boundary_ratio", GRAD_FLOW, "rel:25%", "||dE/dx_0|| / ||dE/dx_L||, the end-to-end ratio"),
    Metric("log_growth_per_block", GRAD_FLOW, "abs:0.05",
           "fitted slope of ln ||dE/dx_l|| per block, toward the input"),
    Metric("weight_first_last_ratio", GRAD_FLOW, "rel:25%", "||dE/dW_first|| / ||dE/dW_last||"),
    Metric("feature_erank_retention", RANK, "abs:0.05", "erank ratio at x_L / erank ratio at x_0"),
    Metric("feature_erank_ratio_last", RANK, "abs:0.05", "erank / min(batch - 1, features) at x_L"),
    Metric("rank1_distance_last", RANK, "abs:0.05", "||X_L - X_1||_F / ||X_L||_F"),
    Metric("weight_erank_ratio_min", RANK, "abs:0.05", "lowest erank / min(m, n) over weights"),
    Metric("weight_erank_ratio_median", RANK, "abs:0.05", "median erank / min(m, n) over weights"),
)}

_G, _R = GradThresholds(), RankThresholds()
LIMITS: dict[str, Limit] = {x.key: x for x in (
    Limit("max_boundary_ratio", "boundary_ratio", "max", _G.explode_ratio),
    Limit("min_boundary_ratio", "boundary_ratio", "min", _G.vanish_ratio),
    Limit("max_log_growth_per_block", "log_growth_per_block", "max", None),
    Limit("min_log_growth_per_block", "log_growth_per_block", "min", None),
    Limit("max_weight_grad_ratio", "weight_first_last_ratio", "max", None),
    Limit("min_weight_grad_ratio", "weight_first_last_ratio", "min", None),
    Limit("min_feature_retention", "feature_erank_retention", "min", _R.feature_retention),
    Limit("min_feature_erank_ratio", "feature_erank_ratio_last", "min", None),
    Limit("min_rank1_distance", "rank1_distance_last", "min", _R.rank1_distance),
    Limit("min_weight_erank_ratio", "weight_erank_ratio_min", "min", _R.weight_erank_ratio),
)}


def probe_of_limit(key: str) -> str:
    return METRICS[LIMITS[key].metric].probe
