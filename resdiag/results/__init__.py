"""Result objects: frozen dataclasses that serialise to a documented, versioned JSON schema.

The table, the plot and the CI gate all read these objects (docs/design.md, "Results").
"""

from resdiag.results.common import (
    Finding,
    ModelInfo,
    RunInfo,
    Scope,
    Verdict,
    atomic_write,
    decode,
    dumps,
    encode,
)
from resdiag.results.gradflow import (
    GRAD_FLOW_SCHEMA,
    BoundaryGrad,
    GradFlowResult,
    GradFlowSummary,
    LayerGrad,
)
from resdiag.results.rank import RANK_SCHEMA, FeatureRankRow, RankResult, RankSummary, WeightRank

__all__ = [
    "RANK_SCHEMA", "FeatureRankRow", "RankResult", "RankSummary", "WeightRank",
    "GRAD_FLOW_SCHEMA", "BoundaryGrad", "Finding", "GradFlowResult", "GradFlowSummary", "LayerGrad",
    "ModelInfo", "RunInfo", "Scope", "Verdict", "atomic_write", "decode", "dumps", "encode",
]
