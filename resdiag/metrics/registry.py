"""Every scalar a result exposes, declared once: its name, the probe and summary it comes from, the
direction that is healthier, its doc line, its table label and its default baseline tolerance.

Tables, JSON summaries, ``resdiag check`` gates and baselines, sweep summaries and the Monitor's
TensorBoard export all read this list (docs/design.md, "Add a metric"). A new metric is one entry
here, one field of its probe's summary (``resdiag.results``) and its computation. The formulas and
their sources are in docs/gradflow.md and docs/rank.md. Plain data: importing it imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Probe = Literal["grad-flow", "rank"]
GRAD_FLOW: Probe = "grad-flow"
RANK: Probe = "rank"
PROBES: tuple[Probe, ...] = (GRAD_FLOW, RANK)
# Which way is healthier: a larger value, a smaller one, or near 1 (ratios that fail both ways).
Direction = Literal["higher", "lower", "near_one", "near_zero"]


@dataclass(frozen=True)
class Metric:
    name: str  # the field of the probe's summary, the JSON key, the baseline tolerance key
    probe: Probe  # grad-flow: GradFlowSummary; rank: RankSummary
    direction: Direction
    doc: str
    label: str  # short column label
    tolerance: str | None = None  # default baseline tolerance (docs/ci.md); None: not compared


METRICS: dict[str, Metric] = {}


def _add(*metrics: Metric) -> None:
    for m in metrics:
        if m.name in METRICS:  # as torchvision's registry does: a name is declared once
            raise ValueError(f"metric {m.name!r} declared twice")
        METRICS[m.name] = m


_add(
    Metric("weight_first_last_ratio", GRAD_FLOW, "near_one", "||dE/dW_first|| / ||dE/dW_last|| "
           "(AUTOTRAINER's ratio)", "W first/last", "rel:25%"),
    Metric("boundary_ratio", GRAD_FLOW, "near_one", "||dE/dx_0|| / ||dE/dx_L||, the end-to-end ratio",
           "||dE/dx_0||/||dE/dx_L||", "rel:25%"),
    Metric("log_growth_per_block", GRAD_FLOW, "near_zero",
           "fitted slope of ln ||dE/dx_l|| per block, toward the input", "ln growth/block", "abs:0.05"),
    Metric("growth_per_block", GRAD_FLOW, "near_one", "exp(log_growth_per_block): the fitted factor per "
           "block", "growth/block"),
    Metric("output_grad_norm", GRAD_FLOW, "higher", "||dE/d output||: 0 means the loss is flat in the "
           "output (nothing to judge)", "||dE/d out||"),
    Metric("weight_gain_median", GRAD_FLOW, "lower", "median over the matmuls of RMS(W) * sqrt(fan_in), the "
           "weight gain (He et al. 2015; about 1 to 1.41 preserves the forward variance)", "W gain median"),
    Metric("feature_erank_ratio_first", RANK, "higher", "erank / min(batch - 1, features) at x_0",
           "erank ratio x_0"),
    Metric("feature_erank_ratio_last", RANK, "higher", "erank / min(batch - 1, features) at x_L",
           "erank ratio x_L", "abs:0.05"),
    Metric("feature_erank_retention", RANK, "higher", "min(erank x_L, c) / min(erank x_0, c), c the lower "
           "of their ceilings min(batch - 1, features) (the erank ratio's quotient when they are equal)",
           "erank retention", "abs:0.05"),
    Metric("rank1_distance_last", RANK, "higher", "||X_L - X_1||_F / ||X_L||_F", "rank-1 dist x_L",
           "abs:0.05"),
    Metric("weight_erank_ratio_min", RANK, "higher", "lowest erank / min(m, n) over weights",
           "W erank min", "abs:0.05"),
    Metric("weight_erank_ratio_median", RANK, "higher", "median erank / min(m, n) over weights",
           "W erank median", "abs:0.05"),
    Metric("weight_stable_rank_median", RANK, "higher", "median ||W||_F^2 / ||W||_2^2 over weights",
           "W stable rank median"),
    Metric("token_res_last", RANK, "higher", "Dong et al.'s res(X) across tokens at the last sequence "
           "boundary, averaged over samples (docs/tokens.md)", "token res x_L"),
    Metric("token_erank_retention", RANK, "higher", "batch-mean token erank, last / first sequence "
           "boundary, each capped at the lower of their ceilings min(T - 1, D) (docs/tokens.md)", "token erank retention"),
)


def of_probe(probe: Probe) -> tuple[Metric, ...]:
    return tuple(m for m in METRICS.values() if m.probe == probe)


def values(probe: Probe, summary: Any) -> dict[str, float]:
    """Every declared metric of ``probe`` read from its result's ``summary``, by name."""
    return {m.name: float(getattr(summary, m.name)) for m in of_probe(probe)}
