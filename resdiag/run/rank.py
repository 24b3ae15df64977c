"""``rank``: weight-matrix spectra of every conv/linear layer and feature ranks at every x_l."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import torch
from torch import nn

import resdiag
from resdiag.data import DataSpec
from resdiag.diagnosis.rank import diagnose_rank
from resdiag.diagnosis.reach import ceiling, common_retention
from resdiag.diagnosis.thresholds import RankThresholds
from resdiag.errors import ResdiagError
from resdiag.metrics.rank import weight_spectra
from resdiag.probes.features import FeatureProbe
from resdiag.probes.layers import Layer, find_blocks, find_layers
from resdiag.results import (
    FeatureRankRow,
    ModelInfo,
    RankResult,
    RankSummary,
    RunInfo,
    WeightRank,
)
from resdiag.run.common import Mode, check_batch, preserved, resolve_device
from resdiag.run.inputs import check_pair
from resdiag.run.target import Target, TargetSpec, build_for


def run_rank(spec: TargetSpec, **options) -> RankResult:
    """``build_target(spec)``, then ``rank`` with ``options``: the call of every front-end."""
    return rank(build_for(spec, options, batch_size=256, backward=False), **options)


def rank(
    target: Target,
    *,
    batch_size: int = 256,
    device: str = "auto",
    data: DataSpec = DataSpec("synthetic"),
    mode: Mode | None = None,
    conv: str = "flat",
    rtol: float | None = None,
    atol: float | None = None,
    thresholds: RankThresholds = RankThresholds(),
) -> RankResult:
    """Weight spectra, then one forward pass of ``batch_size`` inputs recording feature ranks.

    ``mode`` defaults to "train" (BN normalises with batch statistics, as at initialisation) and to
    "eval" when a checkpoint was loaded (trained running statistics).
    """
    if batch_size < 2:
        raise ResdiagError(f"--batch-size must be >= 2 for feature ranks, got {batch_size}")
    if conv not in ("flat", "slices"):
        raise ResdiagError(f"unknown --conv {conv!r}: use flat or slices")
    checkpoint = target.spec.checkpoint
    mode = mode or ("eval" if checkpoint else "train")
    if mode not in ("train", "eval"):
        raise ResdiagError(f"unknown mode {mode!r}: use train or eval")
    model, seed = target.model, target.spec.seed
    check_batch(model, batch_size, mode)
    check_pair(target.inputs, data)
    dev = resolve_device(device)
    model.to(dev)
    batch = next(target.batches(data, batch_size, 1, seed)).to(dev)
    with preserved(model), torch.no_grad(), FeatureProbe(model, find_blocks(model, target.blocks)) as probe:
        model.train(mode == "train")
        torch.manual_seed(seed)
        loss = target.loss(target.forward(batch), batch).item()
    run = RunInfo(1, batch_size, seed, str(dev), data.describe(), mode, loss, torch.__version__,
                  resdiag.__version__, target.objective)
    return rank_from_probe(model, probe, target.info, thresholds, run=run, conv=conv, rtol=rtol, atol=atol,
                           checkpoint=checkpoint)


def rank_from_probe(
    model: nn.Module,
    probe: FeatureProbe,
    info: ModelInfo,
    thresholds: RankThresholds = RankThresholds(),
    *,
    run: RunInfo | None = None,
    conv: str = "flat",
    rtol: float | None = None,
    atol: float | None = None,
    checkpoint: Path | None = None,
    spectra: bool = True,
    layers: list[Layer] | None = None,
) -> RankResult:
    """The RankResult of a model's current weights and of the features ``probe`` recorded.
    ``spectra=False``: the features alone (no weight rows, the weight rules not applied).
    ``layers``: the model's ``find_layers`` when the caller keeps them (the Monitor does)."""
    probe.collect()
    layers = (find_layers(model) if layers is None else layers) if spectra else []
    computed = weight_spectra([layer.effective() for layer in layers], conv=conv, rtol=rtol, atol=atol,
                              groups=[layer.groups for layer in layers])
    weights = tuple(
        WeightRank(i, layer.name, layer.kind, layer.shape, sp.matrix_shape, sp.num_matrices, sp.erank,
                   sp.erank_ratio, sp.stable_rank, sp.numerical_rank, sp.spectral_norm,
                   sp.condition_number, sp.finite)
        for i, (layer, sp) in enumerate(zip(layers, computed, strict=True))
    )
    branch_std = dict(probe.branches)
    tokens = {name: t for name, _, t in probe.tokens}  # TokenRank of the (batch, tokens, features) x_l
    features = tuple(
        FeatureRankRow(i, name, shape, r.erank, r.erank_ratio, r.rank1_distance, r.dong_residual,
                       r.response_std, branch_std.get(name.rsplit(":", 1)[0], math.nan)
                       if name.endswith(":in") else math.nan, r.finite, *_token_fields(tokens.get(name)))
        for i, (name, shape, r) in enumerate(probe.boundaries)
    )
    summary = _summary(weights, features)
    verdict = diagnose_rank(summary, weights, features, thresholds, weights_measured=spectra)
    if run is None:
        batch = probe.boundaries[0][1][0] if probe.boundaries else 0
        p = next(model.parameters(), None)
        run = RunInfo(1, batch, 0, str(p.device) if p is not None else "cpu", "user",
                      "train" if model.training else "eval", math.nan, torch.__version__,
                      resdiag.__version__)
    return RankResult(info, run, conv, str(checkpoint) if checkpoint else None, weights, features,
                      summary, verdict, weights_measured=spectra)


def _summary(weights: tuple[WeightRank, ...], features: tuple[FeatureRankRow, ...]) -> RankSummary:
    nan = math.nan
    first = features[0].erank_ratio if features else nan
    last = features[-1].erank_ratio if features else nan
    w_ratio = [w.erank_ratio for w in weights if math.isfinite(w.erank_ratio)]
    w_stable = [w.stable_rank for w in weights if math.isfinite(w.stable_rank)]
    seq = [f for f in features if f.tokens > 0]
    return RankSummary(
        feature_erank_ratio_first=first,
        feature_erank_ratio_last=last,
        feature_erank_retention=_feature_retention(features[0], features[-1]) if features else nan,
        rank1_distance_last=features[-1].rank1_distance if features else nan,
        weight_erank_ratio_min=min(w_ratio, default=nan),
        weight_erank_ratio_median=statistics.median(w_ratio) if w_ratio else nan,
        weight_stable_rank_median=statistics.median(w_stable) if w_stable else nan,
        token_res_last=seq[-1].token_res if seq else nan,
        token_erank_retention=_token_retention(seq[0], seq[-1]) if seq else nan,
    )


def _feature_retention(first: FeatureRankRow, last: FeatureRankRow) -> float:
    """Erank kept from x_0 to x_L under their common ceiling (resdiag/diagnosis/reach.py)."""
    c0, cl = (ceiling(f.shape[0], math.prod(f.shape[1:])) for f in (first, last))
    return common_retention(first.erank, c0, last.erank, cl)


def _token_retention(first: FeatureRankRow, last: FeatureRankRow) -> float:
    """Batch-mean token erank kept, first to last sequence boundary, under their common ceiling."""
    c0, cl = (ceiling(f.tokens, f.token_features or f.tokens) for f in (first, last))
    return common_retention(first.token_erank_ratio * c0, c0, last.token_erank_ratio * cl, cl)


def _token_fields(t) -> tuple[int, float, float, int]:
    """(tokens, token_erank_ratio, token_res, token_features) of a boundary's TokenRank; (0, NaN,
    NaN, 0) if none."""
    return (0, math.nan, math.nan, 0) if t is None else (t.tokens, t.token_erank_ratio, t.token_res,
                                                         t.features)
