"""Boundary norms taken in batches (``PendingNorms``): whatever the flush threshold, every norm of
GradientProbe and StepProbe equals torch.autograd.grad; a probe closed without a step holds no
gradient."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import resdiag.probes.boundaries as boundaries_mod
from resdiag.probes.grad import GradientProbe
from resdiag.probes.training import StepProbe
from tests.integrations.problems import ResNetMLP, batch, reference


@pytest.mark.parametrize("flush_bytes", [1, 4096, 1 << 40])  # every hook, some, only at the step
@pytest.mark.parametrize("probe_cls", [GradientProbe, StepProbe])
def test_norms_equal_autograd_at_any_flush_threshold(monkeypatch, flush_bytes, probe_cls):
    monkeypatch.setattr(boundaries_mod, "_FLUSH_BYTES", flush_bytes)
    torch.manual_seed(0)
    model = ResNetMLP(width=16, depth=4)
    x, y = batch(32)
    _, want = reference(model, x, y, list(model.blocks))
    blocks = [(f"blocks.{i}", b) for i, b in enumerate(model.blocks)]
    with probe_cls(model, blocks=blocks) as probe:
        nn.functional.cross_entropy(model(x), y).backward()
        step = probe.step()
    assert list(step.boundary_grad) == pytest.approx(want, rel=1e-12)


def test_close_without_step_releases_gradients():
    model = ResNetMLP(width=16, depth=2)
    x, y = batch(8)
    probe = GradientProbe(model, blocks=[(f"blocks.{i}", b) for i, b in enumerate(model.blocks)])
    with probe:
        nn.functional.cross_entropy(model(x), y).backward()
        assert probe._pending._grads  # held until the step ...
    assert not probe._pending._grads  # ... or until the probe closes
