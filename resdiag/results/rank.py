"""The rank result (schema "resdiag.rank", docs/schema.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from resdiag.results.common import JsonResult, ModelInfo, RunInfo, Verdict, decode, verdict_from_dict

RANK_SCHEMA = "resdiag.rank"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class WeightRank:
    index: int  # position among conv/linear layers, input side first
    name: str
    kind: str  # "conv" | "linear"
    shape: tuple[int, ...]
    matrix_shape: tuple[int, int]  # (m, n) of each matrix the weight was cut into
    num_matrices: int  # 1, or kh*kw with --conv slices
    erank: float  # effective rank (Roy & Vetterli 2007)
    erank_ratio: float  # erank / (num_matrices * min(m, n))
    stable_rank: float  # ||W||_F^2 / ||W||_2^2
    numerical_rank: float  # #{s > max(atol, rtol * s_max)}
    spectral_norm: float  # s_max
    condition_number: float  # s_max / s_min
    finite: bool


@dataclass(frozen=True)
class FeatureRankRow:
    index: int  # l in x_l
    name: str  # "<block>:in" or "<block>:out"
    shape: tuple[int, ...]
    erank: float  # effective rank of the centred features
    erank_ratio: float  # erank / min(batch - 1, features)
    rank1_distance: float  # ||X - X_1||_F / ||X||_F
    dong_residual: float  # ||X - 1 mean^T||_F / ||X||_F
    response_std: float  # std of all entries of x_l
    branch_std: float  # std of F(x_l), the residual branch of the block x_l enters; NaN for x_L
    finite: bool
    # Token rank of a (batch, tokens, features) x_l, batch means (docs/tokens.md); tokens = 0 and
    # NaN for a boundary that is not a sequence.
    tokens: int = 0
    token_erank_ratio: float = math.nan  # erank of each sample's centred tokens / min(T - 1, D)
    token_res: float = math.nan  # ||X_b - 1 xbar_b^T||_F / ||X_b||_F (Dong et al. 2021, over tokens)
    token_features: int = 0  # D, features per token (0 when not a sequence)


@dataclass(frozen=True)
class RankSummary:
    feature_erank_ratio_first: float  # at x_0
    feature_erank_ratio_last: float  # at x_L
    feature_erank_retention: float  # last / first
    rank1_distance_last: float
    weight_erank_ratio_min: float  # over conv/linear layers
    weight_erank_ratio_median: float
    weight_stable_rank_median: float
    token_res_last: float = math.nan  # token_res at the last sequence boundary
    token_erank_retention: float = math.nan  # token_erank_ratio last / first sequence boundary


@dataclass(frozen=True)
class RankResult(JsonResult):
    model: ModelInfo
    run: RunInfo
    conv: str  # "flat" or "slices"
    checkpoint: str | None
    weights: tuple[WeightRank, ...]
    features: tuple[FeatureRankRow, ...]
    summary: RankSummary
    verdict: Verdict
    # False when the weight spectra were not taken (the Monitor's spectra_every): ``weights`` is
    # empty and the weight rules were not applied, by request rather than for want of weights
    weights_measured: bool = True
    schema: str = field(default=RANK_SCHEMA)
    schema_version: int = field(default=SCHEMA_VERSION)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RankResult:
        d = decode(d)
        return cls(
            model=ModelInfo(**d["model"]),
            run=RunInfo(**d["run"]),
            conv=d["conv"],
            checkpoint=d["checkpoint"],
            weights=tuple(WeightRank(**{**w, "shape": tuple(w["shape"]),
                                        "matrix_shape": tuple(w["matrix_shape"])}) for w in d["weights"]),
            features=tuple(FeatureRankRow(**{**x, "shape": tuple(x["shape"])}) for x in d["features"]),
            summary=RankSummary(**d["summary"]),
            verdict=verdict_from_dict(d["verdict"]),
            weights_measured=d.get("weights_measured", True),
            schema=d["schema"],
            schema_version=d["schema_version"],
        )
