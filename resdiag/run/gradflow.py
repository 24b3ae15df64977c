"""``grad_flow``: record gradient norms over a few mini-batches and diagnose them."""

from __future__ import annotations

import math

import torch

import resdiag
from resdiag.data import DataSpec
from resdiag.diagnosis.gradflow import diagnose
from resdiag.diagnosis.thresholds import GradThresholds
from resdiag.errors import ResdiagError
from resdiag.metrics.gradient import end_to_end_ratio, log_growth_per_block, mean_std, unit_norms
from resdiag.metrics.scale import median_gain
from resdiag.probes.grad import GradientProbe
from resdiag.probes.layers import MATMUL_KINDS, fan_out, find_blocks
from resdiag.results import (
    BoundaryGrad,
    GradFlowResult,
    GradFlowSummary,
    LayerGrad,
    RunInfo,
    Scope,
)
from resdiag.run.common import Mode, check_batch, preserved, resolve_device
from resdiag.run.inputs import check_pair
from resdiag.run.target import Target, TargetSpec, build_for


def run_grad_flow(spec: TargetSpec, **options) -> GradFlowResult:
    """``build_target(spec)``, then ``grad_flow`` with ``options``: the call of every front-end."""
    return grad_flow(build_for(spec, options, batch_size=32, backward=True), **options)


def grad_flow(
    target: Target,
    *,
    batches: int = 4,
    batch_size: int = 32,
    device: str = "auto",
    data: DataSpec = DataSpec("synthetic"),
    mode: Mode = "train",
    thresholds: GradThresholds = GradThresholds(),
) -> GradFlowResult:
    """Forward and backward ``batches`` mini-batches of the target's loss E; return norms and
    verdict.

    The blocks whose inputs are the x_l are the target's ``blocks`` regular expression (default:
    ``find_blocks``). The model is moved to ``device`` and put in ``mode`` for the run; its mode,
    gradients and buffers are restored afterwards (its weights are never changed: there is no
    optimiser step). Data and dropout draw from generators seeded by the target's seed.
    """
    if batches < 1 or batch_size < 1:
        raise ResdiagError(f"--batches and --batch-size must be >= 1, got {batches} and {batch_size}")
    if mode not in ("train", "eval"):
        raise ResdiagError(f"unknown mode {mode!r}: use train or eval")
    model, seed = target.model, target.spec.seed
    check_batch(model, batch_size, mode)
    check_pair(target.inputs, data)
    dev = resolve_device(device)
    model.to(dev)
    losses = []
    # The probe runs each backward itself (own_backward): one autograd call returns the layer
    # weights' and the boundaries' gradients, with no hook per parameter or boundary; .grad untouched.
    probe = GradientProbe(model, blocks=find_blocks(model, target.blocks), weights_from="grad",
                          own_backward=True)
    with preserved(model), probe:
        model.train(mode == "train")
        torch.manual_seed(seed)  # dropout shortcuts draw from the global generator
        for batch in target.batches(data, batch_size, batches, seed):
            batch = batch.to(dev)
            for p in model.parameters():
                p.grad = None
            value = target.loss(target.forward(batch), batch)
            probe.backward(value)
            losses.append(value.detach())
            probe.step()
        loss_mean = torch.stack(losses).mean().item()
    return grad_flow_from_probe(probe, target.info, loss_mean, batches, batch_size, seed, str(dev), data,
                                mode, thresholds, objective=target.objective,
                                at_init=target.spec.checkpoint is None)


def grad_flow_from_probe(probe: GradientProbe, info, loss, n, bs, seed, dev, data, mode, thresholds,
                         objective: str = "cross_entropy", at_init: bool = True) -> GradFlowResult:
    """The GradFlowResult of the steps ``probe`` recorded: means, summary and verdict. ``at_init``:
    whether the weights are an initialisation (no checkpoint loaded; not the Monitor's trained
    weights), the only case the weight-scale rule speaks about."""
    if len({s.boundary_names for s in probe.steps}) > 1:
        raise ResdiagError("the blocks the model calls changed between batches; resdiag averages each "
                           "boundary over batches, so run with --batches 1")
    w_mean, w_std = mean_std([s.weight_grad for s in probe.steps])
    b_mean, b_std = mean_std([s.boundary_grad for s in probe.steps])
    seen = [any(s.weight_seen[i] for s in probe.steps) for i in range(len(probe.layers))]
    # frozen: requires_grad=False in every batch (a step without the flags: read as trainable)
    frozen = [not any(s.weight_trainable[i] if s.weight_trainable else True for s in probe.steps)
              for i in range(len(probe.layers))]
    # Embeddings are table lookups, not matmuls on the residual stream: shown in the table, left out
    # of the rules' first/last weight (docs/architectures.md, "Weights").
    matmul = [ok and layer.kind in MATMUL_KINDS for layer, ok in zip(probe.layers, seen, strict=True)]
    seen_means = [g for g, ok in zip(w_mean, matmul, strict=True) if ok]
    last_w = seen_means[-1] if seen_means else float("nan")
    shapes = [layer.shape for layer in probe.layers]  # read once: a property that resolves the weight
    layers = tuple(
        LayerGrad(i, layer.name, layer.kind, shape, g, sd, wn, _div(g, wn), _div(g, last_w), ok, fz)
        for i, (layer, shape, g, sd, wn, ok, fz) in enumerate(
            zip(probe.layers, shapes, w_mean, w_std, probe.weight_norms, seen, frozen, strict=True)
        )
    )
    kinds = [x for x in layers if x.kind in MATMUL_KINDS]
    scope = Scope(layers=len(kinds), judged=sum(x.has_grad for x in kinds),
                  frozen=tuple(x.name for x in kinds if x.frozen and not x.has_grad),
                  no_gradient=tuple(x.name for x in kinds if not x.frozen and not x.has_grad),
                  blocks=len(probe.blocks), boundaries=len(probe.steps[0].boundary_names),
                  inert_boundaries=probe.steps[0].inert_boundaries)
    step = probe.steps[0]
    last_b = b_mean[-1] if b_mean else float("nan")
    boundaries = tuple(
        BoundaryGrad(i, name, shape, g, sd, _div(g, last_b))
        for i, (name, shape, g, sd) in enumerate(
            zip(step.boundary_names, step.boundary_shapes, b_mean, b_std, strict=True)
        )
    )
    slope = log_growth_per_block(b_mean)
    names = [x.name for x, ok in zip(layers, matmul, strict=True) if ok]
    # AUTOTRAINER's first and last "layers" are units: a block's matmuls together (unit_norms)
    units, unit_names = unit_norms(seen_means, names, [name for name, _ in probe.blocks])
    summary = GradFlowSummary(
        weight_first_last_ratio=end_to_end_ratio(units),
        boundary_ratio=end_to_end_ratio(b_mean),
        log_growth_per_block=slope,
        growth_per_block=_exp(slope),
        output_grad_norm=mean_std([[s.output_grad] for s in probe.steps])[0][0],
        # every matmul's weight, with or without a gradient: the scale rule reads the weights
        weight_gain_median=_gain_median(probe.layers, shapes, probe.weight_norms),
    )
    verdict = diagnose(summary, units, unit_names, b_mean, list(step.boundary_names), thresholds,
                       at_init=at_init, scope=scope)
    run = RunInfo(n, bs, seed, dev, data.describe(), mode, loss, torch.__version__, resdiag.__version__,
                  objective)
    return GradFlowResult(info, run, layers, boundaries, summary, verdict)


def _gain_median(layers, shapes, weight_norms) -> float:
    """The median weight gain of the matmuls (resdiag/metrics/scale.py), from their Frobenius norms."""
    # FSDP1 leaves each rank a flat (1-D, possibly empty) slice of every weight outside forward:
    # its fan-out is unknown there, so such a layer has no gain (all of them: NaN, not measured)
    matmuls = [(wn, fan_out(layer.kind, shape, layer.groups))
               for layer, shape, wn in zip(layers, shapes, weight_norms, strict=True)
               if layer.kind in MATMUL_KINDS and len(shape) >= 2]
    return median_gain([wn for wn, _ in matmuls], [n for _, n in matmuls])


def _div(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:
        return float("nan")


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return float("inf")
