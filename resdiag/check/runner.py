"""Build each configured model and run its probes: the one module of ``resdiag.check`` that imports torch."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from resdiag.check.config import ModelSpec
from resdiag.check.metrics import GRAD_FLOW, METRICS, RANK
from resdiag.check.result import ModelRun
from resdiag.data import parse_data
from resdiag.errors import ResdiagError
from resdiag.run.common import model_info
from resdiag.run.gradflow import grad_flow, grad_flow_config
from resdiag.run.rank import rank, rank_config
from resdiag.run.usermodel import check_forward, load_user_model


def run_model(spec: ModelSpec, seed: int, device: str) -> ModelRun:
    """Run the probes ``spec`` names and collect their summary metrics, verdicts and a fingerprint.

    Weights and data are seeded by ``seed``: a built-in model is built after ``torch.manual_seed``,
    a user's factory is called after it, so the same config gives the same numbers.
    """
    try:
        results = _builtin(spec, seed, device) if spec.arch is not None else _user(spec, seed, device)
    except ResdiagError as exc:
        raise ResdiagError(f"{spec.source}: {exc}") from None
    metrics = {name: float(getattr(results[m.probe].summary, name))
               for name, m in METRICS.items() if m.probe in results}
    verdicts = {probe: r.verdict for probe, r in results.items()}
    info = next(iter(results.values())).model
    return ModelRun(spec.name, _fingerprint(spec, info), metrics, verdicts)


def _builtin(spec: ModelSpec, seed: int, device: str) -> dict[str, Any]:
    s, data = spec.settings, parse_data(spec.settings.data)
    out: dict[str, Any] = {}
    if GRAD_FLOW in s.probes:
        out[GRAD_FLOW] = grad_flow_config(spec.arch, seed=seed, batches_=s.batches, batch_size=s.batch_size,
                                          device=device, data=data, mode=s.mode)
    if RANK in s.probes:
        out[RANK] = rank_config(spec.arch, seed=seed, batch_size=s.rank_batch_size, device=device,
                                data=data, mode=s.mode)
    return out


def _user(spec: ModelSpec, seed: int, device: str) -> dict[str, Any]:
    s = spec.settings
    torch.manual_seed(seed)
    model = load_user_model(spec.factory)
    classes = check_forward(model, spec.input_shape, spec.num_classes)
    info = model_info(model, None, f"{type(model).__module__}.{type(model).__qualname__}")
    info = dataclasses.replace(info, config={"model": spec.factory, "input_shape": list(spec.input_shape),
                                             "num_classes": classes, "loss": spec.loss})
    common = dict(input_shape=spec.input_shape, num_classes=classes, seed=seed, device=device,
                  data=parse_data(s.data), mode=s.mode, info=info)
    out: dict[str, Any] = {}
    if GRAD_FLOW in s.probes:
        out[GRAD_FLOW] = grad_flow(model, batches_=s.batches, batch_size=s.batch_size, loss=spec.loss,
                                   **common)
    if RANK in s.probes:
        out[RANK] = rank(model, batch_size=s.rank_batch_size, **common)
    return out


def _fingerprint(spec: ModelSpec, info) -> dict[str, Any]:
    """What the numbers depend on besides the code: the model's name, config, size and the run settings."""
    settings = {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(spec.settings).items()}
    return {"name": info.name, "family": info.family, "parameters": info.parameters,
            "config": info.config, "settings": settings}
