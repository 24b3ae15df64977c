import json
import math

import pytest
import torch

from resdiag.data import DataSpec, batches
from resdiag.diagnosis.thresholds import GradThresholds
from resdiag.errors import ResdiagError
from resdiag.results import GradFlowResult
from resdiag.run.gradflow import grad_flow, run_grad_flow
from resdiag.run.inputs import InputSpec
from resdiag.run.target import TargetSpec, build_target
from resdiag.zoo import build, parse_shortcut, resolve


def tiny(name="resnet8", **kw):
    return resolve(name, width=0.25, input_shape=(3, 8, 8), **kw)


def module_target(model, cfg):
    """A live module as the Python API gives it: a target of kind ``module``."""
    return build_target(TargetSpec(module=model, inputs=InputSpec(shape=cfg.input_shape)))


def test_result_rows_and_json_round_trip():
    r = run_grad_flow(TargetSpec(arch=tiny()), batches=2, batch_size=4, device="cpu")
    assert len(r.layers) == 8  # stem, 3 blocks x 2 convs, fc
    assert len(r.boundaries) == 4  # x_0 .. x_3
    assert r.boundaries[-1].relative == pytest.approx(1.0)
    d = json.loads(r.to_json())
    assert d["schema"] == "resdiag.grad-flow" and d["schema_version"] == 1
    assert GradFlowResult.from_dict(d) == r


def test_same_seed_same_json_bytes():
    spec = TargetSpec(arch=tiny(shortcut=parse_shortcut("dropout:0.5")), seed=3)
    a = run_grad_flow(spec, batches=2, batch_size=4, device="cpu")
    b = run_grad_flow(spec, batches=2, batch_size=4, device="cpu")
    assert a.to_json() == b.to_json()


def test_model_is_left_as_found():
    cfg = tiny()
    model = build(cfg)
    model.eval()
    model.stage1[0].train()  # a mixed state must come back mixed
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    grad_flow(module_target(model, cfg), batches=2, batch_size=4, device="cpu")
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN running stats included
    assert [m.training for m in model.modules()] == modes
    assert all(p.grad is None for p in model.parameters())
    assert not any(m._forward_pre_hooks or m._forward_hooks for m in model.modules())


def test_non_finite_gradients_are_findings_not_crashes():
    cfg = resolve("mlp", 4, width=8, input_shape=(3, 4, 4), init_gain=1e30)
    r = run_grad_flow(TargetSpec(arch=cfg), batches=1, batch_size=4, device="cpu")
    assert r.verdict.status == "exploding"
    assert any(f.rule == "non_finite" for f in r.verdict.findings)
    json.loads(r.to_json())  # still valid JSON (non-finite written as strings)


@pytest.mark.parametrize("lam", [0.7, 0.9, 1.1, 1.3])
def test_scaled_shortcut_mlp_follows_prod_lambda(lam):
    # No norm, tiny branch: dE/dx_l ~ lam^(L-l) dE/dx_L (He et al. 2016, eq. 7), so the boundary
    # ratio is lam^L. The verdict follows from the boundary rule with the default thresholds:
    # 0.7^40 = 6e-7 < 6e-5 (vanishing), 0.9^40 = 0.015 and 1.1^40 = 45 (healthy), 1.3^40 = 4e4 > 1e3
    # (exploding). The weight ratio stays near 1 (dE/dW_first and dE/dW_last both scale as lam^L).
    cfg = resolve("mlp", 40, width=32, input_shape=(16,), branch_gain=1e-3,
                  shortcut=parse_shortcut(f"scale:{lam}"))
    r = run_grad_flow(TargetSpec(arch=cfg), batches=1, batch_size=8, device="cpu")
    n = len(r.boundaries) - 1
    assert n == 40
    assert r.summary.log_growth_per_block == pytest.approx(math.log(lam), rel=0.05)
    assert math.log(r.summary.boundary_ratio) == pytest.approx(n * math.log(lam), rel=0.05)
    t = GradThresholds()
    expected = ("vanishing" if lam**n < t.vanish_ratio else
                "exploding" if lam**n > t.explode_ratio else "healthy")
    assert r.verdict.status == expected
    assert {f.rule for f in r.verdict.findings} <= {f"boundary.{expected}", f"slope.{expected}"}


def test_bad_arguments(monkeypatch):
    with pytest.raises(ResdiagError):
        run_grad_flow(TargetSpec(arch=tiny()), batches=0, device="cpu")
    with pytest.raises(ResdiagError, match="CIFAR-10 images"):
        run_grad_flow(TargetSpec(arch=tiny()), data=DataSpec("cifar10", None), device="cpu")
    # The refusal is about torch not seeing CUDA: make it not see it, on any machine.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ResdiagError, match="CUDA"):
        run_grad_flow(TargetSpec(arch=tiny()), device="cuda")


def test_frozen_layer_is_not_a_finding():
    cfg = tiny()
    model = build(cfg)
    model.stem.conv.weight.requires_grad_(False)
    r = grad_flow(module_target(model, cfg), batches=1, batch_size=4, device="cpu")
    assert not r.layers[0].has_grad and r.layers[1].has_grad
    assert not any(f.rule == "non_finite" for f in r.verdict.findings)
    # The first unit that received a gradient is the first block, all its layers together
    # (resdiag.metrics.gradient.unit_norms): AUTOTRAINER's "first layer" of a residual network.
    first = math.hypot(*(x.grad_norm for x in r.layers if x.name.startswith("stage1.0.")))
    assert r.summary.weight_first_last_ratio == pytest.approx(first / r.layers[-1].grad_norm)


def test_zero_init_is_vanishing():
    r = run_grad_flow(TargetSpec(arch=tiny(init_gain=0.0)), batches=1, batch_size=4, device="cpu")
    assert r.verdict.status == "vanishing"


def test_batchnorm_with_one_sample_is_refused_up_front():
    with pytest.raises(ResdiagError, match="batch-size >= 2"):
        run_grad_flow(TargetSpec(arch=tiny()), batches=1, batch_size=1, device="cpu")


def test_mse_loss_matches_autograd_of_the_formula():
    cfg = tiny()
    r = run_grad_flow(TargetSpec(arch=cfg, loss="mse"), batches=1, batch_size=4, device="cpu")
    torch.manual_seed(0)
    model = build(cfg).train()
    x, y = next(batches(DataSpec("synthetic"), cfg.input_shape, 10, 4, 1, 0))
    logits = model(x)
    e = ((logits - torch.nn.functional.one_hot(y, 10).float()) ** 2).mean()
    (g,) = torch.autograd.grad(e, [model.fc.weight])
    assert r.layers[-1].grad_norm == pytest.approx(float(g.norm()), rel=1e-5)
    assert r.run.loss == pytest.approx(float(e.detach()), rel=1e-5)
    with pytest.raises(ResdiagError, match="unknown loss"):
        run_grad_flow(TargetSpec(arch=cfg, loss="hinge"), batches=1, batch_size=4, device="cpu")
