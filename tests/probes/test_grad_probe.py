"""Hook-recorded norms against an independent torch.autograd.grad computation."""

import math

import pytest
import torch
from torch import nn

from resdiag.probes.grad import GradientProbe
from resdiag.probes.layers import find_blocks, find_layers
from resdiag.zoo import build
from tests.support import ALL_SMALL, reference


@pytest.mark.parametrize("cfg", ALL_SMALL, ids=lambda c: f"{c.name}-{getattr(c, 'shortcut', '')}")
def test_probe_matches_autograd(cfg):
    torch.manual_seed(1)
    model = build(cfg).double()
    x = torch.randn(6, *cfg.input_shape, dtype=torch.float64)
    y = torch.randint(0, cfg.num_classes, (6,))
    with GradientProbe(model) as probe:
        # One graph for both, so dropout masks and BN batch statistics are shared.
        loss, ref_w, ref_b = reference(model, x, y)
        loss.backward()
        step = probe.step()
    assert len(step.weight_grad) == len(ref_w) == len(find_layers(model))
    assert len(step.boundary_grad) == len(ref_b) == len(find_blocks(model)) + 1
    for got, want in zip(step.weight_grad + step.boundary_grad, ref_w + ref_b, strict=True):
        assert got == pytest.approx(want, rel=1e-6, abs=1e-300)


def test_steps_are_per_backward_even_when_grad_accumulates():
    torch.manual_seed(0)
    model = build(ALL_SMALL[0]).double()
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    y = torch.zeros(4, dtype=torch.long)
    with GradientProbe(model) as probe:
        for _ in range(2):
            nn.functional.cross_entropy(model(x), y).backward()  # .grad accumulates: 2x
            probe.step()
    assert probe.steps[0].weight_grad == pytest.approx(probe.steps[1].weight_grad, rel=1e-9)


def test_hooks_removed_on_exit_and_on_exception():
    model = build(ALL_SMALL[0])

    def hook_count():
        n = sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())
        return n + sum(len(p._backward_hooks or {}) for p in model.parameters())

    assert hook_count() == 0
    with pytest.raises(RuntimeError, match="boom"):
        with GradientProbe(model):
            assert hook_count() > 0
            raise RuntimeError("boom")
    assert hook_count() == 0


def test_shared_weight_is_counted_once_with_total_gradient():
    lin = nn.Linear(4, 4)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    x = torch.randn(3, 4)
    with GradientProbe(model) as probe:
        model(x).sum().backward()
        step = probe.step()
    assert len(probe.layers) == 1
    assert step.weight_grad[0] == pytest.approx(float(lin.weight.grad.norm()), rel=1e-6)


def test_layer_without_gradient_is_nan_not_a_crash():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    model[0].weight.requires_grad_(False)
    with GradientProbe(model) as probe:
        model(torch.randn(2, 4)).sum().backward()
        step = probe.step()
    assert math.isnan(step.weight_grad[0]) and step.weight_grad[1] > 0
