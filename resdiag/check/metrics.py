"""The numbers ``resdiag check`` gates on, and the limit keys over them: plain data.

Each metric is declared once in ``resdiag.metrics.registry`` (a field of a probe's summary;
docs/gradflow.md has the formulas). A limit is a ``max_*`` or ``min_*`` key of a ``gates`` table;
its default, where it has one, is the threshold the probe's own verdict uses
(``resdiag.diagnosis.thresholds``).
"""

from __future__ import annotations

from dataclasses import dataclass

from resdiag.diagnosis.thresholds import GradThresholds, RankThresholds
from resdiag.metrics.registry import GRAD_FLOW, PROBES, RANK, Metric
from resdiag.metrics.registry import METRICS as REGISTRY

__all__ = ["GRAD_FLOW", "LIMITS", "METRICS", "PROBES", "RANK", "Limit", "Metric", "probe_of_limit"]

# The metrics a baseline compares: those of the one registry that carry a default tolerance.
METRICS: dict[str, Metric] = {m.name: m for m in REGISTRY.values() if m.tolerance is not None}


@dataclass(frozen=True)
class Limit:
    key: str  # the gates key and the gate's name
    metric: str
    bound: str  # "max" (value <= limit passes) or "min" (value >= limit passes)
    default: float | None  # None: off unless configured


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
