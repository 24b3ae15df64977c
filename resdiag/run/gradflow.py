"""``grad_flow``: record gradient norms over a few mini-batches and diagnose them."""

from __future__ import annotations

import math

import torch
from torch import nn

import resdiag
from resdiag.data import DataSpec, batches
from resdiag.diagnosis.gradflow import diagnose
from resdiag.diagnosis.thresholds import GradThresholds
from resdiag.errors import ResdiagError
from resdiag.metrics.gradient import end_to_end_ratio, log_growth_per_block, mean_std
from resdiag.probes.grad import GradientProbe
from resdiag.probes.layers import MATMUL_KINDS, find_blocks
from resdiag.results import (
    BoundaryGrad,
    GradFlowResult,
    GradFlowSummary,
    LayerGrad,
    ModelInfo,
    RunInfo,
)
from resdiag.run.common import (
    LOSSES,
    build_seeded,
    check_batch,
    loss_value,
    model_info,
    preserved,
    resolve_device,
)
from resdiag.run.memory import check_fits
from resdiag.zoo import ModelConfig


def grad_flow_config(cfg: ModelConfig, *, seed: int = 0, checkpoint=None, **kwargs) -> GradFlowResult:
    """Build the network for ``cfg`` (weights seeded by ``seed``, or from ``checkpoint``) and run
    ``grad_flow`` on it."""
    device = resolve_device(kwargs.get("device", "auto"))
    check_fits(cfg, kwargs.get("batch_size", 32), device, backward=True)
    model = build_seeded(cfg, seed, checkpoint)
    return grad_flow(
        model, input_shape=cfg.input_shape, num_classes=cfg.num_classes, seed=seed,
        info=model_info(model, cfg), **kwargs,
    )


def grad_flow(
    model: nn.Module,
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    batches_: int = 4,
    batch_size: int = 32,
    seed: int = 0,
    device: str = "auto",
    data: DataSpec = DataSpec("synthetic"),
    mode: str = "train",
    loss: str = "cross_entropy",
    thresholds: GradThresholds = GradThresholds(),
    info: ModelInfo | None = None,
    blocks: str | None = None,
) -> GradFlowResult:
    """Forward and backward ``batches_`` mini-batches of ``loss`` (cross-entropy, or MSE against
    one-hot labels); return norms and verdict.

    ``blocks`` is a regular expression over module names that picks the blocks whose inputs are
    the x_l (default: ``find_blocks``). The model is moved to ``device`` and put in ``mode`` for
    the run; its mode, gradients and buffers are restored afterwards (its weights are never
    changed: there is no optimiser step).
    """
    if batches_ < 1 or batch_size < 1:
        raise ResdiagError(f"--batches and --batch-size must be >= 1, got {batches_} and {batch_size}")
    if mode not in ("train", "eval"):
        raise ResdiagError(f"unknown mode {mode!r}: use train or eval")
    if loss not in LOSSES:
        raise ResdiagError(f"unknown loss {loss!r}: use {' or '.join(LOSSES)}")
    check_batch(model, batch_size, mode)
    dev = resolve_device(device)
    info = info or model_info(model)
    model.to(dev)
    losses = []
    # Every step starts from .grad = None, so .grad after backward is that step's gradient: read it
    # there (weights_from="grad") rather than through one hook per parameter, which costs more.
    probe = GradientProbe(model, blocks=find_blocks(model, blocks), weights_from="grad")
    with preserved(model), probe:
        model.train(mode == "train")
        torch.manual_seed(seed)  # dropout shortcuts draw from the global generator
        for x, y in batches(data, input_shape, num_classes, batch_size, batches_, seed):
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            for p in model.parameters():
                p.grad = None
            value = loss_value(loss, model(x), y)
            value.backward()
            losses.append(value.detach())
            probe.step()
        loss_mean = torch.stack(losses).mean().item()
    return grad_flow_from_probe(probe, info, loss_mean, batches_, batch_size, seed, str(dev), data, mode,
                                thresholds, objective=loss)


def grad_flow_from_probe(probe: GradientProbe, info, loss, n, bs, seed, dev, data, mode, thresholds,
                         objective: str = "cross_entropy") -> GradFlowResult:
    """The GradFlowResult of the steps ``probe`` recorded: means, summary and verdict."""
    if len({s.boundary_names for s in probe.steps}) > 1:
        raise ResdiagError("the blocks the model calls changed between batches; resdiag averages each "
                           "boundary over batches, so run with --batches 1")
    w_mean, w_std = mean_std([s.weight_grad for s in probe.steps])
    b_mean, b_std = mean_std([s.boundary_grad for s in probe.steps])
    seen = [any(s.weight_seen[i] for s in probe.steps) for i in range(len(probe.layers))]
    # Embeddings are table lookups, not matmuls on the residual stream: shown in the table, left out
    # of the rules' first/last weight (docs/architectures.md, "Weights").
    matmul = [ok and layer.kind in MATMUL_KINDS for layer, ok in zip(probe.layers, seen, strict=True)]
    seen_means = [g for g, ok in zip(w_mean, matmul, strict=True) if ok]
    last_w = seen_means[-1] if seen_means else float("nan")
    layers = tuple(
        LayerGrad(i, layer.name, layer.kind, layer.shape, g, sd, wn, _div(g, wn), _div(g, last_w), ok)
        for i, (layer, g, sd, wn, ok) in enumerate(
            zip(probe.layers, w_mean, w_std, probe.weight_norms, seen, strict=True)
        )
    )
    step = probe.steps[0]
    last_b = b_mean[-1] if b_mean else float("nan")
    boundaries = tuple(
        BoundaryGrad(i, name, shape, g, sd, _div(g, last_b))
        for i, (name, shape, g, sd) in enumerate(
            zip(step.boundary_names, step.boundary_shapes, b_mean, b_std, strict=True)
        )
    )
    slope = log_growth_per_block(b_mean)
    summary = GradFlowSummary(
        weight_first_last_ratio=end_to_end_ratio(seen_means),
        boundary_ratio=end_to_end_ratio(b_mean),
        log_growth_per_block=slope,
        growth_per_block=_exp(slope),
        output_grad_norm=mean_std([[s.output_grad] for s in probe.steps])[0][0],
    )
    names = [x.name for x, ok in zip(layers, matmul, strict=True) if ok]
    verdict = diagnose(summary, seen_means, names, b_mean, list(step.boundary_names), thresholds)
    run = RunInfo(n, bs, seed, dev, data.describe(), mode, loss, torch.__version__, resdiag.__version__,
                  objective)
    return GradFlowResult(info, run, layers, boundaries, summary, verdict)


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
