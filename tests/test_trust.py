"""Verdicts you can trust, end to end: tiny gradients are measured, not read as 0, and nothing is
called healthy without evidence."""

import math

import pytest
import torch
from torch import nn

from resdiag.probes.grad import GradientProbe
from resdiag.run.gradflow import grad_flow, grad_flow_from_probe, run_grad_flow
from resdiag.run.inputs import InputSpec
from resdiag.run.target import TargetSpec, build_target
from resdiag.data import DataSpec
from resdiag.diagnosis.thresholds import GradThresholds
from resdiag.results import ModelInfo
from resdiag.run.rank import rank, run_rank
from resdiag.zoo import build, resolve
from resdiag.zoo.config import parse_shortcut


def test_scaled_shortcuts_measure_a_tiny_gradient_instead_of_zero():
    """129 boundaries of a residual MLP with shortcuts scaled by 0.5: ||dE/dx_0|| is ~0.5^128 of
    ||dE/dx_L|| (~1e-40, below float32's normal range). Float32 squares of it are 0; the norm
    must still be positive and follow prod lambda (He et al. 2016, eq. 7)."""
    cfg = resolve("mlp", 128, shortcut=parse_shortcut("scale:0.5"), branch_gain=0.01)
    r = run_grad_flow(TargetSpec(arch=cfg), batches=1, batch_size=8, device="cpu")
    norms = [b.grad_norm for b in r.boundaries]
    assert len(norms) == 129 and all(n > 0 for n in norms)
    assert r.summary.boundary_ratio == pytest.approx(0.5**128, rel=0.05)
    assert r.verdict.status == "vanishing"
    assert {f.rule for f in r.verdict.findings} == {"boundary.vanishing", "slope.vanishing"}


def test_probe_output_gradient_equals_autograd():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    x = torch.randn(5, 4, dtype=torch.float64)
    with GradientProbe(model) as probe:
        out = model(x)
        out.retain_grad()
        nn.functional.cross_entropy(out, torch.tensor([0, 1, 2, 0, 1])).backward()
        step = probe.step()
    assert step.output_grad == pytest.approx(out.grad.norm().item(), rel=1e-12)


class NoBlocks(nn.Module):
    """A model whose blocks resdiag cannot find by name."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 3)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


class NoWeights(nn.Module):
    """No conv/linear layer: only an elementwise parameter."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(3))

    def forward(self, x):
        return x[:, :3] * self.w


@pytest.mark.parametrize("model, rule", [(NoBlocks, "evidence.boundaries"), (NoWeights, "evidence.weights")])
def test_nothing_measured_is_inconclusive_not_healthy(model, rule):
    torch.manual_seed(0)
    target = build_target(TargetSpec(module=model(), inputs=InputSpec(shape=(8,)), num_classes=3))
    r = grad_flow(target, batches=1, batch_size=4, device="cpu")
    assert r.verdict.status == "inconclusive"
    assert rule in {f.rule for f in r.verdict.findings}


def test_rank_without_boundaries_or_weights_is_inconclusive():
    torch.manual_seed(0)
    r = rank(build_target(TargetSpec(module=NoBlocks(), inputs=InputSpec(shape=(8,)))), batch_size=8,
             device="cpu")
    assert r.verdict.status == "inconclusive" and "evidence.features" in {f.rule for f in r.verdict.findings}
    r = rank(build_target(TargetSpec(module=NoWeights(), inputs=InputSpec(shape=(8,)))), batch_size=8,
             device="cpu")
    assert r.verdict.status == "inconclusive" and "evidence.weights" in {f.rule for f in r.verdict.findings}


def test_a_loss_flat_in_the_output_is_inconclusive():
    """Cross-entropy over one class is constant: every gradient is exactly 0, the output's too.
    (The CLI refuses such a model up front; the verdict must not call it vanishing either.)"""
    torch.manual_seed(0)
    cfg = resolve("mlp", 4)
    model = build(cfg)
    with GradientProbe(model) as probe:
        logits = model(torch.randn(6, *cfg.input_shape))
        one_class = logits[:, :1]  # the logit a single-class model would have
        nn.functional.cross_entropy(one_class, torch.zeros(6, dtype=torch.long)).backward()
        probe.step()
    info = ModelInfo("mlp4", "mlp", 0, {})
    r = grad_flow_from_probe(probe, info, 0.0, 1, 6, 0, "cpu", DataSpec("synthetic"), "train",
                             GradThresholds())
    assert r.summary.output_grad_norm == 0
    assert r.verdict.status == "inconclusive"
    assert "evidence.output" in {f.rule for f in r.verdict.findings}


def test_zero_init_is_vanishing_because_the_output_gets_a_gradient():
    cfg = resolve("resnet", 8, width=0.25, input_shape=(3, 8, 8), init_gain=0.0)
    r = run_grad_flow(TargetSpec(arch=cfg), batches=1, batch_size=4, device="cpu")
    assert r.summary.output_grad_norm > 0 and not math.isnan(r.summary.output_grad_norm)
    assert r.verdict.status == "vanishing" and "zero" in {f.rule for f in r.verdict.findings}


class TwoBlocks(nn.Module):
    """Two residual blocks named like resdiag's, so boundaries are found."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(6, 5)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(5, 5), nn.Tanh()) for _ in range(2))
        self.head = nn.Linear(5, 3)

    def forward(self, x):
        h = self.stem(x)
        self.seen = [h]
        for block in self.blocks:
            h = h + block(h)
            self.seen.append(h)
        for t in self.seen:
            t.retain_grad()
        return self.head(h)


@pytest.mark.parametrize("weights_from", ["hook", "grad"])
@pytest.mark.parametrize("scale", [1e-42, 1e-30, 1e-20, 1.0, 1e20, 1e30])
def test_every_probe_norm_path_matches_float64_of_the_stored_gradient(weights_from, scale):
    """Weight norms (hook and .grad modes), boundary norms and the output norm of a float32 model
    whose loss is scaled by 1e-42 .. 1e30: each equals numpy's float64 norm of the float32 gradient
    as autograd stored it (p.grad, retain_grad), and is positive wherever that gradient is non-zero."""
    import numpy as np

    torch.manual_seed(0)
    model = TwoBlocks()
    blocks = [(f"blocks.{i}", b) for i, b in enumerate(model.blocks)]
    x = torch.randn(4, 6)
    with GradientProbe(model, blocks=blocks, weights_from=weights_from) as probe:
        out = model(x)
        out.retain_grad()
        (out.square().sum() * scale).backward()
        step = probe.step()
    ref = lambda t: float(np.linalg.norm(t.detach().double().numpy()))  # noqa: E731
    for layer, got in zip(probe.layers, step.weight_grad, strict=True):
        want = ref(layer.weight.grad)
        assert got == pytest.approx(want, rel=1e-12, abs=0) and (got > 0) == (want > 0), layer.name
    wanted = [ref(t.grad) for t in model.seen]
    assert list(step.boundary_grad) == pytest.approx(wanted, rel=1e-12, abs=0)
    assert step.output_grad == pytest.approx(ref(out.grad), rel=1e-12, abs=0)
    assert all(g > 0 for g in step.boundary_grad) == all(w > 0 for w in wanted)


@pytest.mark.parametrize("arch, collapsed", [("transformer", False), ("plain_transformer", True)])
def test_token_collapse_reaches_the_rank_verdict(arch, collapsed):
    """Without residuals a transformer's tokens become one vector (res ~2e-7) while the rank across
    samples still looks healthy; the verdict must say collapse, naming the token rule."""
    r = run_rank(TargetSpec(arch=resolve(arch, 6)), batch_size=16, device="cpu")
    seq = [f for f in r.features if f.tokens > 0]
    assert seq and all(math.isfinite(f.token_res) for f in seq)
    assert r.summary.token_res_last == seq[-1].token_res
    rules = {f.rule for f in r.verdict.findings}
    if collapsed:
        assert r.verdict.status == "collapse" and "tokens.res" in rules
        assert r.summary.token_res_last < 1e-5
    else:
        assert r.verdict.status == "healthy" and r.summary.token_res_last > 0.1


def test_constant_branch_output_has_std_zero_not_nan():
    """Found by the mutation run: s2/n - (s1/n)^2 of a constant rounds below 0 for some values
    (363 outputs of 1.0253449218110244 give -2.2e-16)."""
    from resdiag.probes.features import FeatureProbe

    class Const(nn.Module):
        def __init__(self):
            super().__init__()
            self.branch = nn.Linear(1, 1)
            nn.init.zeros_(self.branch.weight)
            nn.init.constant_(self.branch.bias, 1.0253449218110244)  # F(x) constant

        def forward(self, x):
            return x + self.branch(x)

    model = nn.Sequential(Const(), Const())
    with torch.no_grad(), FeatureProbe(model, blocks=[("0", model[0]), ("1", model[1])]) as probe:
        model(torch.randn(363, 1))
    probe.collect()
    stds = dict(probe.branches)
    assert stds == {"0": 0.0, "1": 0.0}
