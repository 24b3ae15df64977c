"""Build each configured model and run its probes: the one module of ``resdiag.check`` that imports torch."""

from __future__ import annotations

import dataclasses
from typing import Any

from resdiag.check.config import ModelSpec
from resdiag.check.metrics import METRICS
from resdiag.check.result import ModelRun
from resdiag.data import parse_data
from resdiag.errors import ResdiagError
from resdiag.metrics.registry import GRAD_FLOW, RANK, values
from resdiag.run.gradflow import grad_flow
from resdiag.run.inputs import InputSpec
from resdiag.run.rank import rank
from resdiag.run.target import TargetSpec, build_target, check_memory


def target_spec(spec: ModelSpec, seed: int) -> TargetSpec:
    """The target a config entry names: a built-in ``arch`` or a ``module:callable`` factory."""
    if spec.tokens is not None:
        inputs = InputSpec(kind="tokens", seq_len=spec.tokens, vocab=spec.vocab)
    else:
        inputs = InputSpec(shape=tuple(spec.input_shape) if spec.arch is None and spec.input_shape else None)
    return TargetSpec(arch=spec.arch, factory=spec.factory, inputs=inputs, num_classes=spec.num_classes,
                      seed=seed, loss=spec.loss, blocks=spec.blocks)


def run_model(spec: ModelSpec, seed: int, device: str) -> ModelRun:
    """Run the probes ``spec`` names and collect their summary metrics, verdicts and a fingerprint.

    Weights and data are seeded by ``seed`` (``build_target``), so the same config gives the same
    numbers.
    """
    s = spec.settings
    try:
        data = parse_data(s.data)
        tspec = target_spec(spec, seed)
        if GRAD_FLOW in s.probes:
            check_memory(tspec, batch_size=s.batch_size, device=device, backward=True)
        if RANK in s.probes:
            check_memory(tspec, batch_size=s.rank_batch_size, device=device, backward=False)
        target = build_target(tspec, device=device)
        results: dict[str, Any] = {}
        if GRAD_FLOW in s.probes:
            results[GRAD_FLOW] = grad_flow(target, batches=s.batches, batch_size=s.batch_size, device=device,
                                           data=data, mode=s.mode)
        if RANK in s.probes:
            results[RANK] = rank(target, batch_size=s.rank_batch_size, device=device, data=data, mode=s.mode)
    except ResdiagError as exc:
        raise ResdiagError(f"{spec.source}: {exc}") from None
    metrics = {name: value for probe, r in results.items()
               for name, value in values(probe, r.summary).items() if name in METRICS}
    verdicts = {probe: r.verdict for probe, r in results.items()}
    return ModelRun(spec.name, _fingerprint(spec, target.info), metrics, verdicts)


def _fingerprint(spec: ModelSpec, info) -> dict[str, Any]:
    """What the numbers depend on besides the code: the model's name, config, size, the weights
    loaded and the run settings."""
    settings = {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(spec.settings).items()}
    return {"name": info.name, "family": info.family, "parameters": info.parameters,
            "config": info.config, "weights": info.weights, "settings": settings}
